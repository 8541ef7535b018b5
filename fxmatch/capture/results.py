"""What a capture search reports: each fitted chain, progress while it runs, the result, its warnings, and the
parsimonious choice among the fitted chains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fxmatch.capture.alignment import Alignment
from fxmatch.chains import chain_label, parsimonious_choice
from fxmatch.identify import Identification
from fxmatch.refine import RefineCancelled


@dataclass(frozen=True)
class ChainFit:
    """One fitted chain: params in units, MR-STFT distance, distance over the no-effect one, output gain (dB)."""

    chain: tuple[str, ...]
    params: list[tuple[str, dict[str, float]]]
    distance: float
    relative: float
    gain_db: float
    #: how far the search took this chain (0: the screen only; the last stage: fitted longest, at the highest rate)
    stage: int
    #: the encoder's probability of the chain (None: not known)
    prior: float | None = None

    @property
    def label(self) -> str:
        """'Compressor -> Reverb', 'no effect' for the empty chain (`fxmatch.chains.chain_label`)."""
        return chain_label(self.chain)


@dataclass(frozen=True)
class CaptureProgress:
    """Where a running search is: stage (0-based) of stages, Adam step of steps (0 of 0 while grids and zooms are
    evaluated), overall fraction (never decreasing; 1 at the end), and the closest chain so far in this stage.

    `best_relative` is measured on this stage's signals (`rate` Hz, the excerpt's first `window_seconds`), so it
    never rises within a stage but may between stages (a longer window at a higher rate is a harder target); the
    last report (`done`) carries the chosen chain and its figure as the result ranks it."""

    stage: int
    stages: int
    step: int
    steps: int
    fraction: float
    best_chain: tuple[str, ...]
    best_relative: float
    rate: int = 0
    window_seconds: float = 0.0
    elapsed: float = 0.0
    done: bool = False


#: progress(report) after each optimisation step; its return value is ignored
CaptureProgressFn = Callable[[CaptureProgress], None]


class CaptureCancelled(RefineCancelled):
    """Raised by `capture` when its `should_stop` callback returns True."""


@dataclass
class CaptureResult:
    """A finished search: the ranking (the chosen chain first), the alignment, the excerpt used and the costs."""

    ranking: list[ChainFit]
    alignment: Alignment
    sample_rate: int
    excerpt_start_s: float
    excerpt_seconds: float
    no_effect_distance: float
    seconds: float
    n_candidates: int
    #: False when the time budget ended the search before its last stage finished
    complete: bool
    #: what the user should know, one line each (`fit_warnings`)
    warnings: list[str] = field(default_factory=list)
    #: what was read off the pair before the search (`fxmatch.identify`; None: not asked for)
    identification: Identification | None = None
    #: the chosen chain's distance over the whole take (up to `take_seconds` from the overlap's start, pedalboard at
    #: the recording's rate) relative to the dry take at the wet take's level there (None: not checked)
    take_relative: float | None = None
    take_seconds: float = 0.0

    @property
    def best(self) -> ChainFit:
        return self.ranking[0]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (the first `top` chains of the ranking; all when None)."""
        return {
            "chain": list(self.best.chain),
            "offset_samples": self.alignment.offset,
            "offset_ms": round(self.alignment.offset_ms, 3),
            "alignment_correlation": round(self.alignment.correlation, 4),
            "partials_correlation": None if self.alignment.partials is None else round(self.alignment.partials, 4),
            "offset_at_edge": self.alignment.at_edge,
            "offset_window_s": self.alignment.window_s,
            "whole_take_search": self.alignment.whole_take,
            "level_db": round(self.alignment.level_db, 3),
            "gain_db": round(self.best.gain_db, 3),
            "distance": round(self.best.distance, 5),
            "relative_distance": round(self.best.relative, 5),
            "take_relative": None if self.take_relative is None else round(self.take_relative, 5),
            "take_seconds": round(self.take_seconds, 3),
            "sample_rate": self.sample_rate,
            "excerpt_start_s": round(self.excerpt_start_s, 3),
            "excerpt_seconds": round(self.excerpt_seconds, 3),
            "seconds": round(self.seconds, 3),
            "candidates": self.n_candidates,
            "complete": self.complete,
            "warnings": list(self.warnings),
            "identification": None if self.identification is None else self.identification.to_dict(),
            "ranking": [{"chain": list(f.chain), "distance": round(f.distance, 5), "relative": round(f.relative, 5),
                         "gain_db": round(f.gain_db, 3), "stage": f.stage,
                         "params": [{"effect": n, "params": {k: round(v, 6) for k, v in p.items()}}
                                    for n, p in f.params]}
                        for f in self.ranking[:top]],
        }


#: above this distance (relative to no effect) the closest chain is called far, with a warning (as `estimate --dry`)
FAR_RELATIVE = 0.5
#: below this correlation of the aligned recordings' partials (`partials_correlation`) the pair is said not to look
#: like one performance. Measured (docs/capture.md): -0.20 to 0.23 for the 9 pairs of different performances that
#: the alignment accepts among the bundled examples crossed (other instruments, similar tempo); for those takes
#: through distortion (40 dB), delay, half-mix chorus, phaser or reverb 0.26-1.0 (a wet-only reverb on drums
#: 0.09), and the examples' own pairs 0.67-1.0; but 0.12-0.25 through a full-mix chorus and 0.07-0.46 through
#: distortion -> chorus -> reverb (a false alarm there: the warning says so). The spectra's coherence did no better (0.0-0.1 on both sides of that overlap).
MIN_PARTIALS = 0.2


def fit_warnings(result: CaptureResult) -> list[str]:
    """What the user should know about a search, one line each: the offset pinned at its window's edge, recordings
    whose partials do not match (not one performance?), the closest chain still far from the wet recording."""
    al, out = result.alignment, []
    if al.at_edge:
        out.append(f"the offset ({al.offset_ms:+.1f} ms) is at the edge of the +-{al.window_s:g} s window the "
                   "alignment searched: the recordings may start further apart; trim the start of the one that "
                   "starts earlier (or widen the window: capture --max-offset S)")
    if al.partials is not None and al.partials < MIN_PARTIALS:
        out.append(f"the dry and wet recordings may not be one performance: once aligned, their partials correlate "
                   f"{al.partials:.2f} (one take through effects: usually above {MIN_PARTIALS:g}; another instrument "
                   "or take: near 0; a heavy chorus lowers it too); check the files")
    if result.best.relative > FAR_RELATIVE:
        out.append(f"the closest chain is still far from the wet recording ({100 * result.best.relative:.0f} % of the "
                   "no-effect distance): the effect may be outside the vocabulary, or the dry recording may not be "
                   "this one's; listen before you use it")
    return out


def _rank(fits: list[ChainFit], tolerance: float, prior_weight: float = 0.0, slack: float = 0.0) -> list[ChainFit]:
    """The parsimonious choice among the chains fitted furthest first, then the rest (furthest, closest first)."""
    last = max(f.stage for f in fits)
    final = [f for f in fits if f.stage == last]
    chosen = final[choose(final, tolerance, prior_weight, slack)]
    rest = sorted((f for f in fits if f is not chosen), key=lambda f: (-f.stage, f.relative))
    return [chosen, *rest]


#: the smallest probability the choice's prior term uses (a chain the encoder rules out costs -log of this at most)
_MIN_PRIOR = 1e-4


def choice_score(fit: ChainFit, prior_weight: float = 0.0) -> float:
    """What the choice minimises: the relative distance times the encoder's probability of the chain to the power
    -`prior_weight` (>= the relative distance; the distance alone when the weight is 0 or no prior). A ratio, so the
    prior tips the same share of a close contest whether the fits are at 30 % of no effect or at 0.3 %."""
    if prior_weight <= 0 or fit.prior is None:
        return fit.relative
    return fit.relative * max(fit.prior, _MIN_PRIOR) ** -prior_weight


def choose(fits: Sequence[ChainFit], tolerance: float, prior_weight: float = 0.0, slack: float = 0.0) -> int:
    """Index of the parsimonious choice: the shortest chain within `tolerance` (relative) plus `slack` (absolute, in
    units of the no-effect distance) of the best score (`choice_score`: the relative distance over the encoder's
    probability to the power `prior_weight`)."""
    return parsimonious_choice([len(f.chain) for f in fits], [choice_score(f, prior_weight) for f in fits], tolerance,
                               slack)
