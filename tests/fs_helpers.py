"""Test helpers for real file-system conditions."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """A real file system a small write fills: a `size` tmpfs mounted on `folder` (skips where mounting is not
    allowed, e.g. without root)."""
    folder.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              check=False, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
