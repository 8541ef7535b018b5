"""Distortion: pedalboard.Distortion (JUCE Gain followed by a tanh waveshaper).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Distortion",
    params=(ParamSpec("drive_db", "dB", 5.0, 40.0, "linear", 25.0, "input gain before the tanh shaper",
                      limits=Limit(-100.0, 100.0, "fxmatch", "fxmatch")),),
    description="tanh waveshaping distortion with an input drive in dB",
)

__getattr__ = twin_attributes(__name__)
