"""HighpassFilter: pedalboard.HighpassFilter (JUCE's first-order IIR high-pass, 6 dB per octave, -3 dB at the cutoff).

The HighpassFilter lives in this package: `SPEC` here is pure data (parameters, units, training ranges, pedalboard's
limits, scales; importing it needs no torch), `twin.py` beside it the differentiable PyTorch twin (`process`).
A twin name read through the package (`fxmatch.effects.highpass_filter.process`) imports the twin, and torch, on
first use.
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
