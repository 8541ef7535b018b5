"""Helpers shared by the effect twin tests."""

from __future__ import annotations

import zlib


def stable_seed(*parts: object) -> int:
    """A seed from `parts` that is the same in every process (unlike `hash`, which Python salts per process)."""
    return zlib.crc32(repr(parts).encode())
