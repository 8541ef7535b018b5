"""fxmatch.audio_io writers: atomic replace of regular files, symlinks followed, FIFOs and devices written through,
other special files refused, and every write failure one FxmatchInputError naming the user's path."""

import io
import os
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxmatch.audio_io import (
    atomic_write,
    check_output,
    output_target,
    same_file,
    write_audio,
    write_bytes_atomic,
    write_text_atomic,
)
from fxmatch.errors import FxmatchInputError
from tests.fs_helpers import tiny_tmpfs

RATE = 48000


def _audio(seconds: float = 0.1, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Seeded noise, float32 `[channels, samples]`."""
    return (np.random.default_rng(seed).standard_normal((channels, int(RATE * seconds))) * 0.1).astype(np.float32)


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


class _FifoReader(threading.Thread):
    """Reads a FIFO to its end in the background (the writer blocks until a reader opens it)."""

    def __init__(self, path) -> None:
        super().__init__(daemon=True)
        self.path, self.data = path, b""

    def run(self) -> None:
        with open(self.path, "rb") as fh:
            self.data = fh.read()


def test_write_audio_replaces_a_regular_file_and_leaves_no_temp_file(tmp_path):
    out = tmp_path / "o.wav"
    out.write_bytes(b"old")
    x = _audio()
    write_audio(out, x, RATE)
    y, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == RATE and np.array_equal(y.T, x)
    assert _hidden(tmp_path) == []


def test_replacing_keeps_the_files_mode(tmp_path):
    out = tmp_path / "o.txt"
    out.write_text("old")
    out.chmod(0o640)
    write_text_atomic(out, "new")
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_symlink_output_writes_its_target_and_keeps_the_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "take.wav"
    target.write_bytes(b"old")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    x = _audio()
    write_audio(link, x, RATE)
    assert link.is_symlink() and os.readlink(link) == str(target)
    y, _ = sf.read(target, dtype="float32", always_2d=True)
    assert np.array_equal(y.T, x)
    assert _hidden(tmp_path) == [] and _hidden(real_dir) == []


def test_dangling_symlink_output_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to("made.txt")
    write_text_atomic(link, "hello")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "hello"


def test_fifo_output_is_written_through(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    reader.start()
    x = _audio()
    write_audio(fifo, x, RATE)
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO, not a file renamed over it
    y, rate = sf.read(io.BytesIO(reader.data), dtype="float32", always_2d=True)
    assert rate == RATE and np.array_equal(y.T, x)
    assert _hidden(tmp_path) == []


def test_dev_null_is_written_through_as_wav():
    write_audio("/dev/null", _audio(), RATE)
    st = os.stat("/dev/null")
    assert stat.S_ISCHR(st.st_mode)
    assert output_target("/dev/null") == (Path("/dev/null"), True)


def test_dev_full_reports_no_space_naming_the_device():
    with pytest.raises(FxmatchInputError, match=r"^/dev/full: cannot write \(No space left on device\)$"):
        write_audio("/dev/full", _audio(), RATE)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_process_output_links_are_written_through():
    assert output_target("/dev/stdout")[1] is True
    assert output_target("/proc/self/fd/1")[1] is True


@pytest.mark.parametrize("name", ["out.wav", "out.wav/"])
def test_folder_output_is_refused_naming_the_path(tmp_path, name):
    (tmp_path / "out.wav").mkdir()
    path = f"{tmp_path}/{name}"
    with pytest.raises(FxmatchInputError, match="folder") as info:
        write_audio(path, _audio(), RATE)
    assert str(info.value).startswith(f"{path}: ")
    assert (tmp_path / "out.wav").is_dir() and list((tmp_path / "out.wav").iterdir()) == []
    assert _hidden(tmp_path) == []


def test_trailing_slash_on_a_new_name_is_refused(tmp_path):
    with pytest.raises(FxmatchInputError, match="names a folder"):
        write_text_atomic(f"{tmp_path}/new.txt/", "x")
    assert list(tmp_path.iterdir()) == []


def test_socket_output_is_refused(tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(FxmatchInputError, match="is a socket"):
            write_text_atomic(path, "x")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_block_device_output_is_refused(tmp_path):
    dev = tmp_path / "blk"
    try:
        os.mknod(dev, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    except PermissionError:
        pytest.skip("creating a block device node needs CAP_MKNOD")
    with pytest.raises(FxmatchInputError, match="is a block device"):
        write_text_atomic(dev, "x")
    assert stat.S_ISBLK(os.lstat(dev).st_mode)


def test_missing_folder_names_the_users_path(tmp_path):
    path = tmp_path / "nope" / "o.wav"
    with pytest.raises(FxmatchInputError, match=f"^{path}: folder {path.parent} does not exist$"):
        write_audio(path, _audio(), RATE)


def test_proc_file_is_a_clear_error():
    with pytest.raises(FxmatchInputError, match=r"^/proc/version: cannot (create a file in /proc|write) \(.+\)$"):
        write_text_atomic("/proc/version", "x")


def test_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    out = tmp_path / "o.bin"
    out.write_bytes(b"precious")

    def _fail(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise OSError(5, "Input/output error")

    with pytest.raises(FxmatchInputError, match=f"^{out}: cannot write \\(Input/output error\\)$"):
        atomic_write(out, _fail)
    assert out.read_bytes() == b"precious" and _hidden(tmp_path) == []


def test_full_disk_is_one_error_and_keeps_the_old_file(tmp_path):
    with tiny_tmpfs(tmp_path / "small") as small:
        out = small / "o.wav"
        out.write_bytes(b"precious")
        with pytest.raises(FxmatchInputError, match=f"^{out}: cannot write \\(No space left on device\\)$"):
            write_audio(out, _audio(seconds=1.0), RATE)
        assert out.read_bytes() == b"precious" and sorted(p.name for p in small.iterdir()) == ["o.wav"]


def test_libsndfile_system_error_on_a_full_disk_says_no_space(tmp_path):
    """soundfile writing straight to a full disk raises LibsndfileError("System error"): still the real reason."""
    with tiny_tmpfs(tmp_path / "small") as small:
        out = small / "o.wav"
        x = _audio(seconds=1.0).T
        with pytest.raises(FxmatchInputError, match=f"^{out}: cannot write \\(No space left on device\\)$"):
            atomic_write(out, lambda tmp: sf.write(tmp, x, RATE))
        assert list(small.iterdir()) == []


def test_same_file_sees_symlinks_and_hard_links(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    (tmp_path / "sym.wav").symlink_to(a)
    os.link(a, tmp_path / "hard.wav")
    (tmp_path / "other.wav").write_bytes(b"x")
    assert same_file(a, tmp_path / "sym.wav") and same_file(a, tmp_path / "hard.wav")
    assert same_file(a, tmp_path / "." / "a.wav")
    assert not same_file(a, tmp_path / "other.wav") and not same_file(a, tmp_path / "missing.wav")


def test_check_output_refuses_an_input_with_the_hint(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    with pytest.raises(FxmatchInputError, match=r"is the input file .*a\.wav; refusing to overwrite it; use -f$"):
        check_output(a, [None, a], hint="use -f")
    check_output(tmp_path / "b.wav", [a])
    assert _hidden(tmp_path) == []


def test_write_bytes_atomic_roundtrip(tmp_path):
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    from fxmatch.audio_io import atomic_folder

    out = tmp_path / "set"
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not out.exists()  # nothing at `out` while it is written
    assert (out / "a.txt").read_text() == "a"
    with pytest.raises(FxmatchInputError, match="not an empty folder"), atomic_folder(out):
        pass
    failed = tmp_path / "failed"
    with pytest.raises(RuntimeError), atomic_folder(failed) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("disk full")
    assert not failed.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    with pytest.raises(FxmatchInputError, match="does not exist"), atomic_folder(tmp_path / "missing" / "set"):
        pass
