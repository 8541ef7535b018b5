"""Reverb: pedalboard.Reverb (juce::Reverb, a Freeverb: 8 damped feedback combs in parallel, 4 allpasses in series).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="Reverb",
    params=(
        ParamSpec("room_size", "", 0.1, 0.95, "linear", 0.5, "comb feedback 0.7 + 0.28 * room_size (decay time)",
                  limits=Limit(0.0, 1.0)),
        ParamSpec("damping", "", 0.0, 1.0, "linear", 0.5, "lowpass in the comb feedback (high-frequency decay)",
                  limits=Limit(0.0, 1.0)),
        ParamSpec("wet_level", "", 0.1, 0.6, "linear", 0.33, "reverberated signal gain (x3 internally)",
                  limits=Limit(0.0, 1.0)),
        ParamSpec("dry_level", "", 0.4, 1.0, "linear", 0.4, "direct signal gain (x2 internally)",
                  limits=Limit(0.0, 1.0)),
    ),
    description="Freeverb-style stereo reverb (JUCE): parallel damped combs into series allpasses",
)

__getattr__ = twin_attributes(__name__)
