"""Gain: pedalboard.Gain (juce::dsp::Gain), the output level at the end of a chain.

The Gain lives in this package: `SPEC` here is pure data (parameters, units, training ranges, pedalboard's
limits, scales; importing it needs no torch), `twin.py` beside it the differentiable PyTorch twin (`process`). A
twin name read through the package (`fxmatch.effects.gain.process`) imports the twin, and torch, on first use.
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
