"""Chains as the user reads them: one label function and the chain-wide output level (torch-free).

A chain is an ordered list of effect names. Its *output level* is a pedalboard `Gain` at the very end of the chain:
capture, match and refine fit it, presets store it, and it is not a chain choice (no candidate chain names it), so
labels show it apart from the effects ("Distortion -> LowpassFilter, output -3.2 dB").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: the effect that carries a chain's output level when it ends the chain
OUTPUT_LEVEL_EFFECT = "Gain"
#: its one parameter, in dB
OUTPUT_LEVEL_PARAM = "gain_db"
#: an output level closer to 0 dB than this is not written to a preset (below a level difference anyone hears,
#: about 1 dB; keeps "no effect" empty and labels free of fitting noise such as "output +0.1 dB")
OUTPUT_LEVEL_EPSILON_DB = 0.5

#: the separator between effects in every label fxmatch prints
SEPARATOR = " -> "
#: the label of the empty chain
NO_EFFECT = "no effect"


def chain_label(names: Sequence[str], separator: str = SEPARATOR, output_db: float | None = None) -> str:
    """'Compressor -> Reverb', 'no effect' for the empty chain; ', output +2.0 dB' when an output level is given."""
    text = separator.join(names) if names else NO_EFFECT
    if output_db is not None and abs(output_db) >= OUTPUT_LEVEL_EPSILON_DB:
        text += f", output {output_db:+.1f} dB"
    return text


def split_output_level(chain: Sequence[tuple[str, Mapping[str, Any]]]
                       ) -> tuple[list[tuple[str, Mapping[str, Any]]], float]:
    """(the effects before the output level, the output level in dB: 0.0 when the chain does not end in Gain)."""
    items = list(chain)
    if items and items[-1][0] == OUTPUT_LEVEL_EFFECT:
        return items[:-1], float(items[-1][1][OUTPUT_LEVEL_PARAM])
    return items, 0.0


def with_output_level(chain: Sequence[tuple[str, Mapping[str, float]]], gain_db: float
                      ) -> list[tuple[str, dict[str, float]]]:
    """The chain with its output level set to `gain_db` (replacing a trailing Gain; none when inaudible)."""
    effects, _ = split_output_level(chain)
    out = [(name, dict(params)) for name, params in effects]
    if abs(gain_db) >= OUTPUT_LEVEL_EPSILON_DB:
        out.append((OUTPUT_LEVEL_EFFECT, {OUTPUT_LEVEL_PARAM: round(float(gain_db), 3)}))
    return out


def parsimonious_choice(lengths: Sequence[int], scores: Sequence[float], tolerance: float, slack: float = 0.0) -> int:
    """Index of the shortest chain (`lengths`) whose score (lower is better) is within `tolerance` (relative) plus
    `slack` (absolute) of the best; ties go to the lower score, then the earlier index."""
    limit = min(scores) * (1.0 + tolerance) + slack
    within = [i for i, v in enumerate(scores) if v <= limit]
    return min(within, key=lambda i: (lengths[i], scores[i]))
