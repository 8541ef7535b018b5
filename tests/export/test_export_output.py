"""`fxmatch export CKPT OUT`: never replaces the checkpoint or a file that is not an ONNX model (issue 25, data safety).

Every refusal is one line on stderr, exit code 2, before the checkpoint is even read, and leaves every file as it was.
"""

import os

import numpy as np
import pytest
import soundfile as sf

from export import onnx_export
from fxmatch.cli import main
from tests.export.helpers import tiny_checkpoint


@pytest.fixture
def ckpt(tmp_path):
    return tiny_checkpoint(tmp_path / "ck.pt")


@pytest.fixture
def no_export(monkeypatch):
    """Fail the test if the export's work starts (the checks must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the export started before the output was checked")

    monkeypatch.setattr(onnx_export, "load_checkpoint", refuse)
    monkeypatch.setattr(onnx_export, "export_encoder", refuse)


def _snapshot(folder):
    """name -> content (a symlink: its target; a folder: None) of every entry of `folder`."""
    return {p.name: os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
            for p in sorted(folder.iterdir())}


def _refused(capsys, argv, folder) -> str:
    before = _snapshot(folder)
    assert main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), lines
    assert _snapshot(folder) == before  # nothing written, nothing left behind
    return lines[0]


def test_export_onto_its_own_checkpoint_is_refused(ckpt, tmp_path, capsys, no_export):
    line = _refused(capsys, ["export", ckpt, ckpt], tmp_path)
    assert "is the input file" in line and "refusing to overwrite" in line
    # --force never allows it
    assert "is the input file" in _refused(capsys, ["export", ckpt, ckpt, "--force"], tmp_path)


def test_export_onto_the_checkpoint_through_a_symlink_or_hard_link_is_refused(ckpt, tmp_path, capsys, no_export):
    link = tmp_path / "model.onnx"
    link.symlink_to(ckpt.name)
    assert "is the input file" in _refused(capsys, ["export", ckpt, link, "--force"], tmp_path)
    hard = tmp_path / "hard.onnx"
    os.link(ckpt, hard)
    assert "is the input file" in _refused(capsys, ["export", ckpt, hard, "--force"], tmp_path)
    # the same file named another way (relative path with a detour)
    detour = tmp_path / "sub"
    detour.mkdir()
    assert "is the input file" in _refused(capsys, ["export", ckpt, detour / ".." / "ck.pt"], tmp_path)


@pytest.mark.parametrize("name", ["song.wav", "model", "model.pt", "model.onnx.bak"])
def test_export_needs_an_onnx_suffix(name, ckpt, tmp_path, capsys, no_export):
    line = _refused(capsys, ["export", ckpt, tmp_path / name], tmp_path)
    assert "must end in .onnx" in line


def test_export_does_not_replace_a_wav_even_with_force(ckpt, tmp_path, capsys, no_export):
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros(1000, np.float32), 16000)
    assert "must end in .onnx" in _refused(capsys, ["export", ckpt, song, "--force"], tmp_path)


def test_export_refuses_an_existing_file_that_is_not_an_onnx_model(ckpt, tmp_path, capsys, no_export):
    audio = tmp_path / "take.onnx"  # a WAV with the wrong name
    sf.write(audio, np.zeros(1000, np.float32), 16000, format="WAV")
    line = _refused(capsys, ["export", ckpt, audio], tmp_path)
    assert "not an ONNX model" in line and "--force" in line
    other = tmp_path / "copy.onnx"  # another checkpoint (a zip) under an .onnx name
    other.write_bytes(ckpt.read_bytes())
    assert "not an ONNX model" in _refused(capsys, ["export", ckpt, other], tmp_path)
    text = tmp_path / "notes.onnx"  # starts like a protobuf, is not one
    text.write_bytes(b"\x08\xff\xff\xff garbage")
    assert "not an ONNX model" in _refused(capsys, ["export", ckpt, text], tmp_path)
    link = tmp_path / "link.onnx"  # through a symlink: its target is what would be replaced
    link.symlink_to(audio.name)
    assert "not an ONNX model" in _refused(capsys, ["export", ckpt, link], tmp_path)


def test_force_replaces_an_existing_non_onnx_file(ckpt, tmp_path, capsys):
    out = tmp_path / "take.onnx"
    out.write_bytes(b"RIFF not a model")
    assert main(["export", str(ckpt), str(out), "--force"]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:1] == b"\x08"  # now an ONNX model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "take.onnx"]


def test_an_existing_onnx_model_or_empty_file_is_replaced_without_force(ckpt, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), str(out)]) == 0
    first = out.stat().st_mtime_ns
    assert main(["export", str(ckpt), str(out), "--name", "again"]) == 0, capsys.readouterr().err
    assert out.stat().st_mtime_ns >= first and b"again" in out.read_bytes()
    empty = tmp_path / "e.onnx"
    empty.touch()
    assert main(["export", str(ckpt), str(empty)]) == 0, capsys.readouterr().err
    assert empty.stat().st_size > 0


def test_export_to_dev_null_is_a_dry_run(ckpt, tmp_path, capsys):
    assert main(["export", str(ckpt), os.devnull]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
