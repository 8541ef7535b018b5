"""scripts/readme_tables.py rewrites the README's benchmark blocks and keeps the file's mode."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_fills_the_blocks_and_keeps_the_file_mode(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- BENCH-EFFECTS:START -->\nstale\n<!-- BENCH-EFFECTS:END -->\nend\n")
    os.chmod(readme, 0o644)
    assert _script().main(readme) == 0
    text = readme.read_text()
    assert "stale" not in text and "| effect |" in text.lower() and text.endswith("<!-- BENCH-EFFECTS:END -->\nend\n")
    assert stat.S_IMODE(readme.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left
