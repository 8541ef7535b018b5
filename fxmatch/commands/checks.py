"""The commands' checks of their numeric options, each with its one-line error (exit code 2)."""

from __future__ import annotations

import math

from fxmatch.errors import FxmatchInputError


def at_least(command: str, option: str, value: float | None, low: int) -> None:
    """FxmatchInputError "{command}: --{option} must be >= {low}, got {value}" when `value` is below `low` (None: the
    option was not given, nothing to check)."""
    if value is not None and value < low:
        raise FxmatchInputError(f"{command}: --{option} must be >= {low}, got {value}")


def positive(command: str, option: str, value: float | None, unit: str = "") -> None:
    """FxmatchInputError "{command}: --{option} must be > 0{unit}, got {value}" unless `value` is finite and > 0
    (None: the option was not given, nothing to check); `unit` such as " seconds"."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise FxmatchInputError(f"{command}: --{option} must be > 0{unit}, got {value}")
