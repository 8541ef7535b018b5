"""Where the shipped default model and the bundled examples are, for a source checkout and for an installed wheel.

A source checkout (including an editable install) reads them from the repository: `models/fxmatch-default.onnx`
and `examples/`. A wheel carries them as data files (`[tool.setuptools.data-files]` in pyproject.toml), which pip
installs under the environment's data prefix as `share/fxmatch/models/` and `share/fxmatch/examples/`; they are
found through `sysconfig` (the environment's scheme first, then the user scheme of `pip install --user`).

`DEFAULT_MODEL` and `DEFAULT_EXAMPLES` are where the files are, or, when no copy is present, where they were
looked for first (so that a message can name a path); callers read them at call time as `shipped.DEFAULT_MODEL`,
so a test can point them elsewhere with one monkeypatch. `default_model()`, `model_path()` and
`default_examples()` raise FxmatchInputError (one clear line, exit 2) when the files are absent.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from fxmatch.errors import FxmatchInputError

#: the shipped model's file name inside `models/`
MODEL_FILE = "fxmatch-default.onnx"
#: the bundled examples' index file inside `examples/`
EXAMPLES_INDEX = "examples.json"
#: the folder under an environment's data prefix where a wheel installs `models/` and `examples/`
INSTALLED_SUBDIR = Path("share") / "fxmatch"

#: the repository root when this module runs from a source checkout (it holds pyproject.toml), else None
_REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOT: Path | None = _REPO if (_REPO / "pyproject.toml").is_file() and (_REPO / "fxmatch").is_dir() else None


def installed_roots() -> list[Path]:
    """The folders a wheel may have installed its data files into (`<data prefix>/share/fxmatch`), most likely first."""
    roots: list[Path] = []
    schemes = [sysconfig.get_default_scheme()]
    try:
        schemes.append(sysconfig.get_preferred_scheme("user"))
    except (KeyError, ValueError):  # a Python built without a user scheme
        pass
    for scheme in schemes:
        try:
            data = sysconfig.get_path("data", scheme)
        except KeyError:
            continue
        root = Path(data) / INSTALLED_SUBDIR
        if root not in roots:
            roots.append(root)
    return roots


def data_roots() -> list[Path]:
    """Where `models/` and `examples/` are looked for, in order: the source checkout, then the installed locations."""
    return ([SOURCE_ROOT] if SOURCE_ROOT is not None else []) + installed_roots()


def _locate(relative: Path) -> Path:
    """The first existing `root / relative` of `data_roots()`, else the first candidate (for messages)."""
    candidates = [root / relative for root in data_roots()]
    for path in candidates:
        if path.exists():
            return path
    return candidates[0]


#: the shipped model (an ONNX file), or where it was looked for first
DEFAULT_MODEL: Path = _locate(Path("models") / MODEL_FILE)
#: the bundled examples folder (examples.json and its audio), or where it was looked for first
DEFAULT_EXAMPLES: Path = _locate(Path("examples") / EXAMPLES_INDEX).parent


def default_model() -> Path:
    """The shipped model file; FxmatchInputError naming where it was looked for when it is absent."""
    if not DEFAULT_MODEL.is_file():
        raise FxmatchInputError(
            f"no model given and the shipped model {DEFAULT_MODEL} is missing; pass --model M.onnx "
            "(export one with `fxmatch export CKPT OUT.onnx`)"
        )
    return DEFAULT_MODEL


def model_path(arg: str | None) -> Path:
    """The `--model` argument as a path, or the shipped model when none is given (clear error when absent)."""
    return Path(arg) if arg else default_model()


def default_examples() -> Path:
    """The bundled examples folder; FxmatchInputError naming where it was looked for when it is absent."""
    if not (DEFAULT_EXAMPLES / EXAMPLES_INDEX).is_file():
        raise FxmatchInputError(
            f"the bundled examples {DEFAULT_EXAMPLES} are missing (they ship with the repository and the wheel; "
            "regenerate them with scripts/make_examples.py, or pass --examples DIR)"
        )
    return DEFAULT_EXAMPLES


def describe(path: Path) -> str:
    """`path` relative to its data root (e.g. `models/fxmatch-default.onnx`) for help texts, else as it is."""
    for root in data_roots():
        try:
            return str(path.relative_to(root))
        except ValueError:
            continue
    return str(path)
