"""Phaser: pedalboard.Phaser (juce::dsp::Phaser, a 6-stage first-order all-pass phaser with feedback).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Phaser",
    params=(
        ParamSpec("rate_hz", "Hz", 0.1, 3.0, "log", 1.0, "LFO rate",
                  limits=Limit(0.0, 100.0, "JUCE", "JUCE")),
        ParamSpec("depth", "", 0.2, 1.0, "linear", 0.5, "LFO depth (fraction of the log-frequency range / 2)",
                  limits=Limit(0.0, 1.0, "JUCE", "JUCE")),
        ParamSpec("centre_frequency_hz", "Hz", 300.0, 3000.0, "log", 1300.0, "centre cutoff of the all-passes",
                  limits=Limit(0.0, 20000.0, "JUCE", "JUCE")),
        ParamSpec("feedback", "", 0.0, 0.7, "linear", 0.0, "feedback gain around the all-pass chain",
                  limits=Limit(-1.0, 1.0, "JUCE", "JUCE")),
        ParamSpec("mix", "", 0.3, 0.8, "linear", 0.5, "wet proportion (linear dry/wet mix)",
                  limits=Limit(0.0, 1.0, "JUCE", "JUCE")),
    ),
    description="6-stage all-pass phaser with a sine LFO and feedback",
)

__getattr__ = twin_attributes(__name__)
