"""HighpassFilter: pedalboard.HighpassFilter (JUCE's first-order IIR high-pass, 6 dB per octave, -3 dB at the cutoff).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="HighpassFilter",
    params=(ParamSpec("cutoff_frequency_hz", "Hz", 40.0, 1000.0, "log", 200.0, "-3 dB point of the high-pass",
                      limits=Limit(0.01, 20000.0, "fxmatch", "fxmatch"), below_nyquist=True),),
    description="first-order IIR high-pass (juce::dsp::IIR::Coefficients::makeFirstOrderHighPass): a low cut",
)

__getattr__ = twin_attributes(__name__)
