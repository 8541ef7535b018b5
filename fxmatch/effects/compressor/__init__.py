"""Compressor: pedalboard.Compressor (juce::dsp::Compressor: peak ballistics envelope and a hard-knee gain computer).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Compressor",
    params=(
        ParamSpec("threshold_db", "dB", -40.0, -5.0, "linear", -20.0, "level above which the gain is reduced",
                  limits=Limit(-100.0, 24.0, "fxmatch", "fxmatch")),
        ParamSpec("ratio", "", 1.5, 20.0, "log", 4.0, "input/output slope above threshold (in dB)",
                  limits=Limit(1.0, 1000.0, "pedalboard", "fxmatch")),
        ParamSpec("attack_ms", "ms", 0.5, 50.0, "log", 5.0, "envelope time constant while the level rises",
                  limits=Limit(0.0, 10000.0, "fxmatch", "fxmatch")),
        ParamSpec("release_ms", "ms", 20.0, 500.0, "log", 100.0, "envelope time constant while the level falls",
                  limits=Limit(0.0, 10000.0, "fxmatch", "fxmatch")),
    ),
    description="feed-forward peak compressor with a hard knee (juce::dsp::Compressor)",
)

__getattr__ = twin_attributes(__name__)
