"""Errors the command line turns into one clear line and exit code 2."""

from __future__ import annotations

import os
from pathlib import Path


class FxmatchInputError(ValueError):
    """Bad input from the user (file, preset, option): reported as one line, exit code 2."""


def require_file(path: str | os.PathLike, what: str, folder_what: str | None = None) -> Path:
    """`path` as a Path when it is a non-empty file; else FxmatchInputError: "no such {what}", "is a folder, not
    {folder_what}" (default "a {what}"), "empty {what}"."""
    p = Path(path)
    if not p.exists():
        raise FxmatchInputError(f"{p}: no such {what}")
    if p.is_dir():
        raise FxmatchInputError(f"{p}: is a folder, not {folder_what or 'a ' + what}")
    if p.stat().st_size == 0:
        raise FxmatchInputError(f"{p}: empty {what}")
    return p
