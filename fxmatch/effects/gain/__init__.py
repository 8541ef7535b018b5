"""Gain: pedalboard.Gain (juce::dsp::Gain), the output level at the end of a chain.

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Gain",
    params=(ParamSpec("gain_db", "dB", -12.0, 12.0, "linear", 0.0, "output level change",
                      limits=Limit(-100.0, 60.0, "fxmatch", "fxmatch")),),
    description="a volume control: multiplies by a gain given in dB",
)

__getattr__ = twin_attributes(__name__)
