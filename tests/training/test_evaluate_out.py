"""`fxmatch evaluate -o OUT_DIR`: OUT_DIR is made when missing, but not its parents: `-o nodir/sub` is refused with
exit 2 before any work, as the README's exit-code table says (issue 25)."""

from __future__ import annotations

import pytest

from fxmatch import cli


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """(model, set) paths that exist; the evaluation itself fails the test if it starts."""
    import training.evaluate

    def refuse(*args, **kwargs):
        raise AssertionError("the evaluation started before the output folder was checked")

    monkeypatch.setattr(training.evaluate, "evaluate", refuse)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08")
    folder = tmp_path / "set"
    folder.mkdir()
    return model, folder


def _refused(capsys, *argv) -> str:
    assert cli.main(["evaluate", *map(str, argv), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), lines
    return lines[0]


def test_an_out_dir_in_a_missing_folder_is_refused_and_nothing_is_made(inputs, tmp_path, capsys):
    model, folder = inputs
    line = _refused(capsys, model, folder, "-o", tmp_path / "nodir" / "sub")
    assert f"folder {tmp_path / 'nodir'} does not exist" in line
    assert not (tmp_path / "nodir").exists()


def test_an_out_dir_that_is_a_file_is_refused(inputs, tmp_path, capsys):
    model, folder = inputs
    (tmp_path / "report").write_text("mine")
    assert "exists and is not a folder" in _refused(capsys, model, folder, "-o", tmp_path / "report")
    assert (tmp_path / "report").read_text() == "mine"


def test_an_out_dir_whose_report_file_cannot_be_written_is_refused(inputs, tmp_path, capsys):
    model, folder = inputs
    out = tmp_path / "out"
    (out / "eval.json").mkdir(parents=True)  # a folder where the report goes
    assert "eval.json: is a folder" in _refused(capsys, model, folder, "-o", out)


def test_a_missing_out_dir_in_an_existing_folder_is_checked_then_made(inputs, tmp_path, capsys, monkeypatch):
    import training.evaluate

    def started(*args, **kwargs):
        raise RuntimeError("the evaluation started")

    model, folder = inputs
    monkeypatch.setattr(training.evaluate, "evaluate", started)
    # the check passes and the work starts (here it stops at once); nothing is made before the work
    assert cli.main(["evaluate", str(model), str(folder), "-o", str(tmp_path / "new"), "--no-progress"]) == 1
    assert "the evaluation started" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
