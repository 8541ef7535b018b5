"""Capture: with the dry signal known, find the effect chain (and its params) that turns it into the wet one.

Given the dry recording x (e.g. a guitar's DI) and the wet one y (the pedal's output), `capture` first aligns them
(the earliest strong peak of a regularised dry-to-wet impulse response within +-1 s, sharpened to a sample) and
refuses a pair whose band envelopes do not correlate (not the same performance). It then fits the candidate chains
through the differentiable twins on a short excerpt: chain length by chain length, each chain started from a grid
around the fit of the chain one effect shorter (a beam of the best ones extended), all chains of a length fitted in
one batch (Adam on logits of the normalised params, multi-resolution STFT loss, early stop); the best few go on at
higher rates (the Phaser always at the recording's own rate), the alignment is refined with the best chain's twin
output, and the shortest chain within a tolerance of the closest wins (parsimony; with the encoder's probabilities,
"closest" counts its log-probability of each chain too: `choose`). Layers: imports only fxmatch,
torch, numpy and scipy.

One concern a module: `alignment` (offset, same-performance checks, echo times), `candidates` (which chains to
try), `settings` (stages and knobs), `fit` (the batched fit through `fxmatch.render.ChainRenderer`, params in a
`fxmatch.layout.ParamLayout`), `search` (`capture` itself), `results` (what it reports and the parsimonious
choice). The names below are the package's API, importable from `fxmatch.capture` as before the split.
"""

from fxmatch.capture.alignment import (
    ALIGN_SECONDS,
    EARLY_PEAK_RATIO,
    EDGE_FRACTION,
    MAX_OFFSET_SECONDS,
    MIN_CORRELATION,
    MIN_SECONDS,
    WHOLE_TAKE_MIN_CORRELATION,
    Alignment,
    align,
    band_envelopes,
    band_levels,
    echo_times,
    envelope_correlation,
    level_db,
    moved,
    overlap_correlation,
    partials_correlation,
)
from fxmatch.capture.candidates import (
    TONE_STAGE,
    Candidate,
    all_candidates,
    candidates_from_ranked,
    sub_chains,
    tone_stage_chains,
)
from fxmatch.capture.fit import FINE, FINE_LR_SCALE, GRID
from fxmatch.capture.results import (
    FAR_RELATIVE,
    MIN_PARTIALS,
    CaptureCancelled,
    CaptureProgress,
    CaptureProgressFn,
    CaptureResult,
    ChainFit,
    choice_score,
    choose,
    fit_warnings,
)
from fxmatch.capture.search import IDENTIFY_SHARE, NATIVE_RATE_EFFECTS, capture
from fxmatch.capture.settings import DEFAULT_STAGES, SearchSettings, Stage, stage_rate
from fxmatch.layout import GAIN_RANGE_DB
from fxmatch.native_rate import phaser_at_rate

__all__ = [
    "ALIGN_SECONDS", "DEFAULT_STAGES", "EARLY_PEAK_RATIO", "EDGE_FRACTION", "FAR_RELATIVE", "FINE", "FINE_LR_SCALE",
    "GAIN_RANGE_DB", "GRID", "IDENTIFY_SHARE", "MAX_OFFSET_SECONDS", "MIN_CORRELATION", "MIN_PARTIALS", "MIN_SECONDS",
    "NATIVE_RATE_EFFECTS", "TONE_STAGE", "WHOLE_TAKE_MIN_CORRELATION", "Alignment", "Candidate", "CaptureCancelled",
    "CaptureProgress", "CaptureProgressFn", "CaptureResult", "ChainFit", "SearchSettings", "Stage", "align",
    "all_candidates", "band_envelopes", "band_levels", "candidates_from_ranked", "capture", "choice_score", "choose",
    "echo_times", "envelope_correlation", "fit_warnings", "level_db", "moved", "overlap_correlation",
    "partials_correlation", "phaser_at_rate", "stage_rate", "sub_chains", "tone_stage_chains",
]
