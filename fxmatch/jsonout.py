"""JSON on stdout for scripts (`--json`), one function every layer's command line shares."""

from __future__ import annotations

import json


def print_json(data: object) -> None:
    """Print JSON for scripts (stdout)."""
    print(json.dumps(data, indent=2, allow_nan=False, default=float))
