"""How a capture search runs: its stages (rate, window, steps, loss) and settings."""

from __future__ import annotations

from dataclasses import dataclass

from fxmatch.capture.alignment import MAX_OFFSET_SECONDS
from fxmatch.metrics import DEFAULT_FFT_SIZES


@dataclass(frozen=True)
class Stage:
    """One round of the search: signals at most `rate` Hz (None: the recording's own), the best `keep` chains so
    far (None: all), Adam steps, learning rate, and the loss: MR-STFT at `fft_sizes` with hops of
    `n_fft / hop_divisor` (4: `mrstft_distance`)."""

    rate: int | None
    keep: int | None
    steps: int
    lr: float = 0.1
    fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES
    hop_divisor: int = 4
    #: the stage uses the first `seconds` of the excerpt (None: all of it)
    seconds: float | None = None
    #: early-stop patience of this stage (steps; None: `SearchSettings.patience`)
    patience: int | None = None


#: the first stage screens every chain (by length, longer chains starting from the shorter ones' fits) with a cheap
#: loss at 16 kHz on the excerpt's first 0.5 s; the best 16 go on with the real MR-STFT distance at 24 kHz on its
#: first 1.0 s, then the best 3 at the input's rate (<= 48 kHz) on all of it. The short windows first widen the
#: narrow valleys of LFO rates and delays (a rate error shifts the LFO's phase in proportion to the time since the
#: recording's start) and halve the CPU time (12 sampled-instrument examples, k = 64: 35.8 -> 19.6 s median, as
#: many chains named; README). The low rates bias the first two stages: pedalboard's effects do not sound the same
#: at another rate (JUCE's Reverb damps per sample, its filters warp), so at 16 kHz the true chain and settings sit
#: 3-48 % (median by effect; Reverb worst) of the no-effect distance from the target instead of ~1 %. Running every
#: stage at the input's rate (`Stage(None, ...)`) was measured against this on the same 12 examples with v5's
#: ranking: 8 chains named instead of 9, MR-STFT 27.5 % instead of 29.6 % (median), 27 % more CPU: no gain shown.
#: The last stage runs up to 60 steps with a patience of 15 (20 and 6 before session 10): its small steps each
#: gain under the early stop's 0.5 %, yet together took a Delay from 17.7 % to 5.7 % of no effect; on the 48
#: examples of docs/capture.md the MR-STFT median 10.8 -> 9.0 % (musescore), 5.2 -> 1.8 % (shifted), for 12-20 %
#: more CPU.
DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage(16000, None, 20, 0.15, (2048, 512), 2, 0.5),
    Stage(24000, 16, 30, 0.1, seconds=1.0),
    Stage(48000, 3, 60, 0.05, patience=15),
)


def stage_rate(stage: Stage, native: int) -> int:
    """The rate (Hz) `stage` runs the twins at for a recording at `native` Hz."""
    return native if stage.rate is None else min(int(stage.rate), native)


@dataclass(frozen=True)
class SearchSettings:
    """How `capture` searches: excerpt and longest pre-roll (s), stages, starts fitted per chain in the first stage,
    chains of each length extended to the next (None: all), parsimony tolerance (a ratio) and slack (absolute),
    whether an output gain is fitted, early-stop patience (steps; a stage may set its own), weight of the encoder's
    probability in the choice (`choose`; 0: the distance alone), alignment window, noise gate."""

    excerpt_seconds: float = 1.5
    max_preroll_seconds: float = 1.0
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    restarts: int = 2
    beam: int | None = 4
    tolerance: float = 0.05
    #: the choice also takes a shorter chain within this much (absolute, relative distance units) of the best: a
    #: floor under which a closer fit does not earn an effect (a Compressor fitted as Compressor > Distortion >
    #: PeakFilter at 0.43 % against 0.57 %; docs/capture.md "Exact echoes"; 0: the ratio `tolerance` alone)
    slack: float = 0.01
    #: every chain fits the chain-wide output level (a trailing Gain in the preset; not a chain choice)
    fit_gain: bool = True
    patience: int = 6
    prior_weight: float = 0.05
    #: the alignment's window (+- s; `align`); an excerpt is also placed anywhere in the longer file
    max_offset_seconds: float = MAX_OFFSET_SECONDS
    #: the distance ignores log-magnitude differences below the target's noise floor (`metrics.gate_floors`): a
    #: dither or hiss floor no chain can reproduce then does not dominate the figure (False: the fixed 1e-7 floor)
    gate_noise: bool = True
    #: read each effect's params off the aligned pair first (`fxmatch.identify`) and start the twins from them
    identify: bool = True
