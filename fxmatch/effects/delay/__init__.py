"""Delay: pedalboard.Delay (a juce::dsp::DelayLine without interpolation, a feedback loop and a linear mix).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Delay",
    params=(
        ParamSpec("delay_seconds", "s", 0.05, 0.8, "linear", 0.5, "echo spacing (truncated to whole samples)",
                  limits=Limit(0.0, 30.0)),
        ParamSpec("feedback", "", 0.0, 0.7, "linear", 0.0, "gain of each echo relative to the previous one",
                  limits=Limit(0.0, 1.0)),
        ParamSpec("mix", "", 0.1, 0.6, "linear", 0.5, "wet proportion (linear dry/wet rule)",
                  limits=Limit(0.0, 1.0)),
    ),
    description="feedback delay with an integer-sample delay time and a linear dry/wet mix",
)

__getattr__ = twin_attributes(__name__)
