"""PeakFilter: pedalboard.PeakFilter (JUCE IIR::Coefficients::makePeakFilter, an RBJ peaking-EQ biquad).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

import math

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="PeakFilter",
    params=(
        ParamSpec("cutoff_frequency_hz", "Hz", 200.0, 6000.0, "log", 1000.0, "centre frequency of the bell",
                  limits=Limit(0.01, 96000.0, "fxmatch", "fxmatch")),
        ParamSpec("gain_db", "dB", -12.0, 12.0, "linear", 0.0, "boost (or cut) at the centre frequency",
                  limits=Limit(-99.0, 99.0, "fxmatch", "fxmatch")),
        ParamSpec("q", "", 0.5, 4.0, "log", math.sqrt(0.5), "bandwidth: higher is narrower",
                  limits=Limit(0.001, 1000.0, "fxmatch", "fxmatch")),
    ),
    description="RBJ peaking-EQ biquad (juce::dsp::IIR::Coefficients::makePeakFilter)",
)

__getattr__ = twin_attributes(__name__)
