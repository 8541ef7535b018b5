"""LowpassFilter: pedalboard.LowpassFilter (JUCE's first-order IIR low-pass, 6 dB per octave, -3 dB at the cutoff).

`SPEC` here is pure data (no torch); the differentiable twin is `twin.py` beside it (layout: `fxmatch.effects`).
"""

from __future__ import annotations

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec, twin_attributes

SPEC = EffectSpec(
    name="LowpassFilter",
    params=(ParamSpec("cutoff_frequency_hz", "Hz", 300.0, 12000.0, "log", 5000.0, "-3 dB point of the low-pass",
                      limits=Limit(0.01, 20000.0, "fxmatch", "fxmatch"), below_nyquist=True),),
    description="first-order IIR low-pass (juce::dsp::IIR::Coefficients::makeFirstOrderLowPass): a tone stage",
)

# The training range reaches 300 Hz: fitted after a Distortion to real pedals (Guitarix's DS-1, MXR, Big Muff on
# real guitars; scripts/measure_tone_stage.py), a first-order low-pass lands at 350-1500 Hz, where it stands in
# for a pedal's tone stack and a cabinet's steeper roll-off.

__getattr__ = twin_attributes(__name__)
