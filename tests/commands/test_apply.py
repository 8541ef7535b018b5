"""`fxmatch apply`: never destroys the input, writes through pipes and devices, and every write failure is one line
on stderr with exit code 2 naming the user's path."""

import ctypes
import io
import json
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from fxmatch.cli import main
from tests.fs_helpers import tiny_tmpfs

RATE = 48000
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


@pytest.fixture
def files(tmp_path):
    """(preset, take.wav) in tmp_path: a Distortion preset and 0.1 s of seeded stereo noise (PCM 24)."""
    preset = tmp_path / "p.fxpreset.json"
    preset.write_text(json.dumps({"format": "fxmatch-preset", "version": 1,
                                  "chain": [{"effect": "Distortion", "params": {"drive_db": 20.0}}]}))
    x = (np.random.default_rng(0).standard_normal((RATE // 10, 2)) * 0.1).astype(np.float32)
    take = tmp_path / "take.wav"
    sf.write(take, x, RATE, subtype="PCM_24")
    return preset, take


def _expected(take) -> np.ndarray:
    """The take through the preset's chain, `[channels, samples]`."""
    x, rate = sf.read(take, dtype="float32", always_2d=True)
    return pedalboard.Distortion(drive_db=20.0)(np.ascontiguousarray(x.T), rate)


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), captured.err
    return lines[0]


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The console script in its own process: `python -m fxmatch.cli ARGS` (stdout and stderr captured)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "fxmatch.cli", *args], stderr=subprocess.PIPE, check=False,
                          **kwargs)


def _drop_root_file_powers() -> None:
    """preexec_fn: a root child loses CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH at exec, so folder modes apply to it."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _cli_without_root_powers(*args: str) -> subprocess.CompletedProcess:
    """`_cli` as a process that file modes apply to (skips where root cannot drop its capabilities)."""
    try:
        return _cli(*args, preexec_fn=_drop_root_file_powers)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop root's file capabilities here: {exc}")


# ----------------------------------------------------------------------------------------------------------------
# IN == OUT


@pytest.mark.parametrize("how", ["same", "dot", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused_and_the_take_untouched(files, capsys, how):
    preset, take = files
    folder = take.parent
    out = {"same": take, "dot": folder / "." / "take.wav", "symlink": folder / "link.wav",
           "hardlink": folder / "hard.wav"}[how]
    if how == "symlink":
        out.symlink_to(take.name)
    if how == "hardlink":
        os.link(take, out)
    before = take.read_bytes()
    assert main(["apply", str(preset), str(take), str(out)]) == 2
    line = _one_error_line(capsys)
    assert "is the input file" in line and "--overwrite-input" in line and str(out) in line
    assert take.read_bytes() == before
    assert _hidden(folder) == []


def test_output_that_is_the_preset_is_refused(files, capsys):
    preset, take = files
    before = preset.read_bytes()
    wav_alias = preset.parent / "preset_alias.wav"
    wav_alias.symlink_to(preset.name)
    assert main(["apply", str(preset), str(take), str(wav_alias)]) == 2
    assert "is the input file" in _one_error_line(capsys)
    assert preset.read_bytes() == before


@pytest.mark.parametrize("how", ["same", "symlink"])
def test_overwrite_input_replaces_the_take_with_the_rendering(files, how):
    preset, take = files
    expected = _expected(take)
    out = take
    if how == "symlink":
        out = take.parent / "link.wav"
        out.symlink_to(take.name)
    assert main(["apply", str(preset), str(take), str(out), "--overwrite-input"]) == 0
    y, rate = sf.read(take, dtype="float32", always_2d=True)
    assert rate == RATE
    np.testing.assert_allclose(y.T, expected, atol=1e-6)
    assert out.is_symlink() == (how == "symlink")
    assert _hidden(take.parent) == []


def test_overwrite_input_through_a_hard_link_keeps_the_other_name(files):
    """The rename replaces the named file; the other hard link keeps the original take (nothing is lost)."""
    preset, take = files
    before = take.read_bytes()
    hard = take.parent / "hard.wav"
    os.link(take, hard)
    assert main(["apply", str(preset), str(take), str(hard), "--overwrite-input"]) == 0
    assert take.read_bytes() == before
    y, _ = sf.read(hard, dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, _expected(take), atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# outputs that are not regular files


def test_symlink_output_writes_the_target_and_keeps_the_link(files, tmp_path):
    preset, take = files
    (tmp_path / "renders").mkdir()
    target = tmp_path / "renders" / "out.wav"
    target.write_bytes(b"old render")
    link = tmp_path / "out.wav"
    link.symlink_to(target)
    assert main(["apply", str(preset), str(take), str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    y, _ = sf.read(target, dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, _expected(take), atol=1e-6)
    assert _hidden(tmp_path) == [] and _hidden(tmp_path / "renders") == []


def test_fifo_output_is_written_through(files, tmp_path):
    preset, take = files
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def _read() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    reader = threading.Thread(target=_read, daemon=True)
    reader.start()
    assert main(["apply", str(preset), str(take), str(fifo)]) == 0
    reader.join(timeout=30)
    assert not reader.is_alive() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    _assert_is_the_rendered_take(io.BytesIO(got[0]), take)
    assert _hidden(tmp_path) == []


def _assert_is_the_rendered_take(wav, take) -> None:
    """`wav` (a path or file object) holds the take rendered through the preset."""
    y, rate = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == RATE
    np.testing.assert_allclose(y.T, _expected(take), atol=1e-6)


def test_dev_null_output_works(files, capsys):
    preset, take = files
    assert main(["apply", str(preset), str(take), "/dev/null"]) == 0
    assert "wrote /dev/null" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_dev_stdout_output_is_the_wav_on_stdout(files, tmp_path):
    preset, take = files
    proc = _cli("apply", str(preset), str(take), "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout[:4] == b"RIFF"
    _assert_is_the_rendered_take(io.BytesIO(proc.stdout), take)  # the audio, whichever process rendered it


def test_dev_stdout_redirected_to_a_file_writes_that_file(files, tmp_path):
    preset, take = files
    with open(tmp_path / "redirected.wav", "wb") as fh:
        proc = _cli("apply", str(preset), str(take), "/dev/stdout", stdout=fh)
    assert proc.returncode == 0, proc.stderr
    _assert_is_the_rendered_take(tmp_path / "redirected.wav", take)
    assert _hidden(tmp_path) == []


def test_dev_full_output_exits_2_with_no_space(files, capsys):
    preset, take = files
    assert main(["apply", str(preset), str(take), "/dev/full"]) == 2
    line = _one_error_line(capsys)
    assert line == "fxmatch: error: /dev/full: cannot write (No space left on device)"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("name", ["out.wav", "out.wav/"])
def test_folder_output_exits_2_naming_it(files, tmp_path, capsys, name):
    preset, take = files
    (tmp_path / "out.wav").mkdir()
    path = f"{tmp_path}/{name}"
    assert main(["apply", str(preset), str(take), path]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"fxmatch: error: {path}: ") and "folder" in line
    assert list((tmp_path / "out.wav").iterdir()) == [] and _hidden(tmp_path) == []


# ----------------------------------------------------------------------------------------------------------------
# write failures


def test_proc_output_exits_2(files, capsys):
    preset, take = files
    assert main(["apply", str(preset), str(take), "/proc/version.wav"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("fxmatch: error: /proc/version.wav: cannot ") and "/proc/version.wav." not in line


def test_missing_folder_exits_2(files, tmp_path, capsys):
    preset, take = files
    assert main(["apply", str(preset), str(take), str(tmp_path / "nope" / "o.wav")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert not (tmp_path / "nope").exists()


def test_read_only_folder_exits_2_naming_the_path(files, tmp_path):
    preset, take = files
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "o.wav").write_bytes(b"old render")
    ro.chmod(0o555)
    try:
        proc = _cli_without_root_powers("apply", str(preset), str(take), str(ro / "o.wav"))
    finally:
        ro.chmod(0o755)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and err[0].startswith(f"fxmatch: error: {ro / 'o.wav'}: ")
    assert "Permission denied" in err[0]
    assert sorted(p.name for p in ro.iterdir()) == ["o.wav"] and (ro / "o.wav").read_bytes() == b"old render"


def test_write_protected_output_file_is_not_replaced(files, tmp_path):
    preset, take = files
    out = tmp_path / "o.wav"
    out.write_bytes(b"keep me")
    out.chmod(0o444)
    proc = _cli_without_root_powers("apply", str(preset), str(take), str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Permission denied" in proc.stderr.decode()
    assert out.read_bytes() == b"keep me" and _hidden(tmp_path) == []


def test_full_disk_exits_2_and_keeps_the_old_output(files, tmp_path, capsys):
    preset, _ = files
    long_take = tmp_path / "long.wav"
    x = (np.random.default_rng(1).standard_normal((RATE, 2)) * 0.1).astype(np.float32)
    sf.write(long_take, x, RATE, subtype="PCM_16")
    with tiny_tmpfs(tmp_path / "small") as small:
        out = small / "o.wav"
        out.write_bytes(b"old render")
        assert main(["apply", str(preset), str(long_take), str(out)]) == 2
        assert _one_error_line(capsys) == f"fxmatch: error: {out}: cannot write (No space left on device)"
        assert sorted(p.name for p in small.iterdir()) == ["o.wav"] and out.read_bytes() == b"old render"
