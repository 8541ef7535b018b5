"""What the app says about the estimate (issue 25, "the app's confidence"): how sure the model is in the command
line's words, why a less likely chain plays, and how far B sounds from A in words. No audio device: the window
runs over a fake engine that reads its audio through the real engine's readings (realtime.engine.EngineReadings).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pedalboard
import pytest

from fxmatch.audio_io import read_audio
from fxmatch.inference import describe
from gui import theme
from gui.widgets.ab_panel import ABPanel, ab_distance_db, describe_distance
from gui.widgets.chain_view import ChainHeader, chain_label, playing_state
from realtime.engine import EngineReadings, Levels, LiveEstimate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: the frozen state of the issue: the shown chain at 6 % while the alternatives list 13 %, 13 % and 8 %
SHOWN = ("Compressor", "PeakFilter", "Chorus")
ALTERNATIVES = ((("Chorus", "Delay"), 0.13), (("Compressor", "Chorus", "Delay"), 0.13),
                (("PeakFilter", "Chorus", "Delay"), 0.08))


def _params(names) -> tuple[tuple[str, dict[str, float]], ...]:
    from fxmatch.effects import get_spec

    return tuple((n, dict(get_spec(n).defaults())) for n in names)


class FakeEngine(EngineReadings):
    """The engine API the window polls, without a stream: set signals and estimates by hand."""

    def __init__(self, rate: int = 48000):
        self.config = SimpleNamespace(mode="reference")
        self._sample_rate = rate
        self.signals: dict[str, np.ndarray] = {}
        self.estimate: LiveEstimate | None = None
        self._chain: tuple = ()
        self.running = True

    def recent_audio(self, which: str, n_samples: int) -> np.ndarray:
        x = self.signals.get(which, np.zeros(0, np.float32))[-n_samples:]
        return np.concatenate([np.zeros(n_samples - x.size, np.float32), x.astype(np.float32)])

    def levels(self) -> Levels:
        return Levels(-20.0, -20.0, -20.0, False, False, False)

    def telemetry(self) -> SimpleNamespace:
        return SimpleNamespace(sample_rate=self._sample_rate, block_frames=256, provider="CPUExecutionProvider",
                               model_name="fake", input_latency_s=0.0, output_latency_s=0.0,
                               estimate_latency_ms=1.0, cpu_load=0.1, xruns=0, estimates_per_s=4.0, error=None)

    def publish(self, chain, probability: float, alternatives) -> None:
        seq = self.estimate.seq + 1 if self.estimate else 0
        self.estimate = LiveEstimate(tuple(chain), _params(chain), probability, tuple(alternatives), seq, 1.0, 0.0)

    def latest_estimate(self) -> LiveEstimate | None:
        return self.estimate

    def current_chain(self):
        return self._chain if self._frozen or self.estimate is None else self.estimate.params

    def set_frozen(self, frozen: bool) -> None:
        if frozen and not self._frozen:
            self._chain = self.current_chain()
        self._frozen = bool(frozen)

    def set_chain(self, chain) -> None:
        self._chain, self._frozen = tuple((n, dict(p)) for n, p in chain), True

    def reset_to_estimate(self) -> None:
        self._frozen = False

    def set_ab(self, position: str) -> None:
        self._ab_position = position

    def close(self) -> None:
        self.running = False


@pytest.fixture
def window(qtbot, settings, tiny_model):
    """A MainWindow (reference mode, timers stopped) over a FakeEngine that has published the issue's estimate."""
    from gui.main_window import MainWindow

    w = MainWindow(settings, model_path=str(tiny_model))
    qtbot.addWidget(w)
    w.frame_timer.stop()
    w.status_timer.stop()
    w.setup.set_mode("reference")
    engine = FakeEngine()
    engine.publish(SHOWN, 0.06, ALTERNATIVES)
    w.engine = engine
    w.tick()
    yield w
    w.close()


def _ticks(w, n: int = 1) -> None:
    for _ in range(n):
        w.tick()


# ------------------------------------------------------------------------------------------------ confidence words
@pytest.mark.parametrize("p, alts", [(0.17, ((("Delay",), 0.13), (("Reverb",), 0.05))),
                                     (0.95, ((("Delay",), 0.03),)), (0.62, ((("Delay",), 0.2),)),
                                     (0.35, ((("Delay",), 0.05),))])
def test_the_header_says_how_sure_in_the_command_lines_words(qtbot, p, alts):
    """Not a bare "p = 17 %": the words and warning of fxmatch.inference.describe, which `fxmatch estimate` prints."""
    header = ChainHeader()
    qtbot.addWidget(header)
    header.set_estimate(("Distortion",), p, alts)
    conf = describe(p, [(chain_label(c), q) for c, q in alts])
    assert header.probability_text.text() == conf.text
    assert header.probability.value() == round(100 * p)
    assert header.confidence == conf
    if conf.warning:
        assert header.probability_text.toolTip() == conf.warning
    colour = theme.OK if p >= 0.7 else theme.WARN if p >= 0.5 else theme.BAD
    assert header.probability_text.styleSheet() == f"color: {colour};"


def test_an_unsure_estimate_reads_like_the_command_line(qtbot):
    header = ChainHeader()
    qtbot.addWidget(header)
    header.set_estimate(("Distortion",), 0.17, ((("Distortion", "Delay"), 0.13), ((), 0.05)))
    assert header.probability_text.text() == "unsure: alternatives are close (p = 0.17, next 0.13)"
    assert "Distortion → Delay, no effect are nearly as likely" in header.probability_text.toolTip()
    header.set_estimate(None, None)
    assert header.probability_text.text() == "–" and header.confidence is None


# ------------------------------------------------------------------------------------------------ why it plays
def test_playing_state_names_the_reason_and_the_most_likely_chain():
    est = (SHOWN, 0.06, ALTERNATIVES)
    text, colour = playing_state("estimate", SHOWN, *est)
    assert text == ("▶ Playing the estimate, held: Chorus → Delay is more likely now (13 % against 6 %) and takes "
                    "over once it leads a few analyses in a row")
    assert colour == theme.WARN
    text, _ = playing_state("estimate", ("Chorus", "Delay"), ("Chorus", "Delay"), 0.4, ((SHOWN, 0.2),))
    assert text == "▶ Playing the estimate: the model's most likely chain (40 %)"
    assert playing_state("estimate", SHOWN, *est, analyse=True)[0].startswith("Showing the estimate, held")
    text, colour = playing_state("frozen", SHOWN, *est)
    assert text == ("❄ Frozen (F): Compressor → PeakFilter → Chorus, the model gives it 6 %; its most likely is "
                    "Chorus → Delay (13 %), R follows it")
    assert colour == theme.ACCENT
    text, _ = playing_state("kept", ("Reverb",), *est)
    assert text == ("⌕ Kept from the search, the best fit to the dry and target: Reverb, not in the model's 4 most "
                    "likely; its most likely is Chorus → Delay (13 %), R follows it")
    text, _ = playing_state("alternative", ("Chorus", "Delay"), *est)
    assert text == "❄ Auditioning an alternative: Chorus → Delay, also the model's most likely chain (13 %)"
    assert playing_state("estimate", None, None, None) == ("", theme.DIM)
    assert playing_state("preset", ("Reverb",), None, None)[0] == "❄ A loaded preset"


def test_the_window_says_why_a_less_likely_chain_plays(qtbot, window):
    """The issue's frozen state: the chain plays at 6 % while the alternatives list 13 %, 13 % and 8 %; the chain
    view says it is held, frozen, auditioned, offered or kept by a search, and names the most likely chain."""
    engine, view = window.engine, window.chain_view
    assert window.header.probability_text.text() == "unsure: alternatives are close (p = 0.06, next 0.13)"
    assert view.names() == SHOWN and view.state_label.isVisibleTo(window)
    assert view.state().startswith("▶ Playing the estimate, held: Chorus → Delay is more likely now (13 % against "
                                   "6 %)")
    window.header.freeze.click()
    _ticks(window)
    assert engine.frozen and view.state() == ("❄ Frozen (F): Compressor → PeakFilter → Chorus, the model gives it "
                                              "6 %; its most likely is Chorus → Delay (13 %), R follows it")
    engine.publish(("Chorus", "Delay"), 0.3, ((SHOWN, 0.1),))  # the estimate moves on while frozen
    _ticks(window)
    assert view.names() == SHOWN and "its most likely is Chorus → Delay (30 %), R follows it" in view.state()
    engine.publish(SHOWN, 0.06, ALTERNATIVES)
    _ticks(window)
    window.header.alt_buttons[1].click()
    _ticks(window)
    assert view.names() == ("Compressor", "Chorus", "Delay")
    assert view.state().startswith("❄ Auditioning an alternative: Compressor → Chorus → Delay, the model gives it "
                                   "13 %; its most likely is Chorus → Delay (13 %)")
    window.cancel_capture()
    best = SimpleNamespace(chain=("Reverb",), params=_params(("Reverb",)), relative=0.2, gain_db=0.0)
    window._capture_done(SimpleNamespace(best=best, ranking=[best], complete=True))
    _ticks(window)
    assert view.names() == ("Reverb",) and view.state().startswith("⌕ Search result on offer (Keep or Discard)")
    window.discard_capture()
    _ticks(window)
    assert view.names() == ("Compressor", "Chorus", "Delay") and view.state().startswith("❄ Auditioning")
    window._capture_done(SimpleNamespace(best=best, ranking=[best], complete=True))
    window.keep_capture()
    _ticks(window)
    assert view.state().startswith("⌕ Kept from the search, the best fit to the dry and target: Reverb, not in "
                                   "the model's 4 most likely")
    window.header.reset.click()
    _ticks(window)
    assert not engine.frozen and view.names() == SHOWN and view.state().startswith("▶ Playing the estimate, held")
    engine.publish(("Chorus", "Delay"), 0.4, ((SHOWN, 0.2),))
    _ticks(window)
    assert view.state() == "▶ Playing the estimate: the model's most likely chain (40 %)"


def test_an_edited_knob_says_your_values_play(qtbot, window):
    card = window.chain_view.cards[0]
    knob = next(iter(card.knobs.values()))
    knob.valueEdited.emit(knob.value())
    _ticks(window)  # before the edit reaches the engine: frozen already
    assert window.chain_view.state().startswith("❄ Frozen on your edit")
    qtbot.waitUntil(lambda: window.engine.frozen, timeout=2000)
    _ticks(window)
    assert window.chain_view.state().startswith("❄ Frozen on your edit: Compressor → PeakFilter → Chorus, the model "
                                                "gives it 6 %")


# ------------------------------------------------------------------------------------------------ A↔B in words
@pytest.mark.parametrize("db, word, colour", [(0.0, "very close", theme.OK), (0.99, "very close", theme.OK),
                                              (1.0, "close", theme.OK), (2.9, "close", theme.OK),
                                              (3.0, "noticeable", theme.WARN), (5.9, "noticeable", theme.WARN),
                                              (6.0, "far", theme.BAD), (19.5, "far", theme.BAD),
                                              (math.inf, "far", theme.BAD)])
def test_the_distance_scale_in_words(db, word, colour):
    assert describe_distance(db) == (word, colour)


def test_the_readout_shows_the_word_then_the_number(qtbot):
    ab = ABPanel()
    qtbot.addWidget(ab)
    ab.set_distance(2.04)
    assert ab.distance.text() == (f"A↔B  <span style='color:{theme.OK}'>close</span>"
                                  f"  <span style='color:{theme.DIM}'>2.0 dB</span>")
    ab.set_distance(19.5)
    assert f"<span style='color:{theme.BAD}'>far</span>" in ab.distance.text() and "19.5 dB" in ab.distance.text()
    assert "very close: under 1 dB" in ab.distance.toolTip() and "far: 6 dB or more" in ab.distance.toolTip()
    ab.set_distance(float("nan"))
    assert ab.distance.text() == "A↔B  –"


def _example(name: str) -> tuple[np.ndarray, int]:
    x, rate = read_audio(EXAMPLES / f"{name}.flac")
    return x[0], rate


def test_the_distance_reads_sound_not_inaudible_bands():
    """0 for the same sound at another level; tone changes in order; None for silence, NaN or too little audio."""
    target, rate = _example("guitar_distortion_target")
    dry, _ = _example("guitar_distortion_dry")
    assert ab_distance_db(target, 0.3 * target, rate) == pytest.approx(0.0, abs=1e-6)

    def through(*effects) -> np.ndarray:
        return pedalboard.Pedalboard(list(effects))(target, rate)

    shelf = ab_distance_db(target, through(pedalboard.HighShelfFilter(3000, 1.0)), rate)
    bell = ab_distance_db(target, through(pedalboard.PeakFilter(1000, 6.0, 1.0)), rate)
    low = ab_distance_db(target, through(pedalboard.LowpassFilter(2000)), rate)
    far = ab_distance_db(target, dry, rate)
    assert describe_distance(shelf)[0] == "very close" and describe_distance(bell)[0] == "close"
    assert describe_distance(low)[0] == "far" and describe_distance(far)[0] == "far"
    assert shelf < bell < low
    assert ab_distance_db(target, np.zeros_like(target), rate) is None
    assert ab_distance_db(target, np.full_like(target, np.nan), rate) is None
    assert ab_distance_db(target[:1000], target[:1000], rate) is None


def test_a_bass_cut_above_3k_reads_very_close_in_the_window_not_red(qtbot, window):
    """The bass example against itself low-passed at 3 kHz, where it is 60 dB down: the old per-bin distance read it
    over 8 dB (red) though the spectra overlap; the window's band distance says "very close"."""
    bass, rate = _example("bass_compressor_chorus_reverb_target")
    matched = pedalboard.Pedalboard([pedalboard.LowpassFilter(3000)])(bass, rate)
    engine = window.engine
    engine._sample_rate = rate
    engine.signals = {"target": bass, "matched": matched}
    _ticks(window, 15)
    assert f"<span style='color:{theme.OK}'>very close</span>" in window.ab.distance.text()
    engine.signals["matched"] = 0.5 * bass  # the same sound, quieter: A/B plays it at A's loudness
    assert window.ab_distance(engine) == pytest.approx(0.0, abs=1e-6)
    window.setup.set_mode("analyse")
    assert window.ab_distance(engine) is None
