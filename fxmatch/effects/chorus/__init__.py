"""Chorus: pedalboard.Chorus (juce::dsp::Chorus, float32), a sine-modulated fractional delay with feedback.

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Chorus",
    params=(
        ParamSpec("rate_hz", "Hz", 0.2, 4.0, "log", 1.0, "LFO rate of the delay modulation",
                  limits=Limit(0.0, 100.0)),
        ParamSpec("depth", "", 0.1, 0.9, "linear", 0.25, "modulation depth (delay swing = 10 ms * depth)",
                  limits=Limit(0.0, 1.0, "JUCE", "JUCE")),
        ParamSpec("centre_delay_ms", "ms", 3.0, 20.0, "linear", 7.0, "centre of the modulated delay",
                  limits=Limit(0.0, 100.0, "JUCE", "JUCE")),
        ParamSpec("feedback", "", 0.0, 0.5, "linear", 0.0, "gain of the delayed signal fed back to the input",
                  limits=Limit(-1.0, 1.0, "JUCE", "JUCE")),
        ParamSpec("mix", "", 0.2, 0.8, "linear", 0.5, "wet proportion (linear dry/wet rule)",
                  limits=Limit(0.0, 1.0)),
    ),
    description="sine-LFO modulated fractional delay with feedback, mixed with the dry signal",
)

__getattr__ = twin_attributes(__name__)
