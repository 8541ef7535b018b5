"""A built wheel (not an editable install) carries the shipped model and the examples: `fxmatch demo` runs from
a fresh virtual environment, in a folder outside the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run `cmd`; its stdout (the test fails with stdout and stderr when it exits non-zero)."""
    p = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(venv folder, environment): fxmatch's wheel installed without dependencies into a fresh venv, whose
    dependencies come from this interpreter's site-packages on PYTHONPATH (never the source tree: the editable
    install's .pth hook is not read from a PYTHONPATH folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # the tracked files, copied: the build leaves nothing in the checkout
    for name in _run(["git", "ls-files", "-z"], cwd=ROOT).split("\0"):
        if name and (ROOT / name).is_file() and not name.startswith(("runs/", "tests/")):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)], cwd=tmp)
    wheels = sorted((tmp / "dist").glob("fxmatch-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)  # pip from ensurepip: no network
    _run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
          "--disable-pip-version-check", str(wheels[0])], cwd=tmp)
    deps = str(Path(np.__file__).resolve().parents[1])  # the site-packages holding the dependencies
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "FXMATCH_DEBUG")}
    env.update(PYTHONPATH=deps, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    return env_dir, env


def test_the_wheel_finds_its_model_and_examples_in_its_own_prefix(wheel_venv, tmp_path):
    env_dir, env = wheel_venv
    code = ("import json, fxmatch, fxmatch.shipped as s; print(json.dumps([fxmatch.__file__, s.SOURCE_ROOT is None, "
            "str(s.default_model()), str(s.default_examples())]))")
    where, no_source, model, examples = json.loads(_run([str(env_dir / "bin" / "python"), "-c", code], tmp_path,
                                                        env))
    prefix = env_dir.resolve()
    assert Path(where).resolve().is_relative_to(prefix) and no_source
    assert Path(model).resolve() == prefix / "share" / "fxmatch" / "models" / "fxmatch-default.onnx"
    assert Path(examples).resolve() == prefix / "share" / "fxmatch" / "examples"
    assert (Path(examples) / "examples.json").is_file()


def test_fxmatch_demo_runs_from_the_installed_wheel_outside_the_tree(wheel_venv, tmp_path):
    env_dir, env = wheel_venv
    fxmatch = str(env_dir / "bin" / "fxmatch")
    assert "--examples" in _run([fxmatch, "demo", "--help"], tmp_path, env)
    out = _run([fxmatch, "demo", "-o", "out", "--no-dry"], tmp_path, env)  # the blind answers: the dry-take search
    # (issue 22) compiles every twin in a fresh venv; tests/commands/test_demo.py covers it
    assert "(fxmatch-default.onnx) on" in out and "chain correct for" in out
    assert (tmp_path / "out" / "report.md").is_file()
    assert len(list((tmp_path / "out").glob("*.fxpreset.json"))) == 6
