"""fxmatch.shipped: where the shipped model and the bundled examples are, and a clear error when they are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxmatch import shipped
from fxmatch.cli import main
from fxmatch.errors import FxmatchInputError

ROOT = Path(__file__).resolve().parents[1]


def test_a_source_checkout_reads_the_repository_first():
    assert shipped.SOURCE_ROOT == ROOT
    assert shipped.data_roots()[0] == ROOT
    assert all(r.parts[-2:] == ("share", "fxmatch") for r in shipped.installed_roots())
    assert shipped.DEFAULT_MODEL == ROOT / "models" / "fxmatch-default.onnx"
    assert shipped.DEFAULT_EXAMPLES == ROOT / "examples"
    assert shipped.describe(shipped.DEFAULT_MODEL) == "models/fxmatch-default.onnx"


def test_model_path_prefers_the_argument(tmp_path):
    assert shipped.model_path(str(tmp_path / "m.onnx")) == tmp_path / "m.onnx"


def test_absent_files_are_one_clear_error_naming_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "DEFAULT_MODEL", tmp_path / "models" / "fxmatch-default.onnx")
    monkeypatch.setattr(shipped, "DEFAULT_EXAMPLES", tmp_path / "examples")
    with pytest.raises(FxmatchInputError, match="fxmatch-default.onnx is missing; pass --model"):
        shipped.model_path(None)
    with pytest.raises(FxmatchInputError, match=r"examples .* are missing"):
        shipped.default_examples()


def test_demo_without_the_bundled_examples_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "DEFAULT_EXAMPLES", tmp_path / "examples")
    assert main(["demo", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled examples" in err[0] and "--examples DIR" in err[0]
    assert not (tmp_path / "out").exists()
