"""The chain as a row of pedal-like cards (knobs in units) under a line saying why it plays, and its header
(the estimate, how sure the model is in the command line's words, freeze, alternatives)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

from PyQt6 import QtCore, QtGui, QtWidgets

from fxmatch.chains import chain_label as fxmatch_chain_label
from fxmatch.effects import get_spec
from fxmatch.effects.spec import EffectSpec
from fxmatch.inference import Confidence, describe
from gui import theme
from gui.widgets.knob import Knob

log = logging.getLogger(__name__)

ChainData = list[tuple[str, dict[str, float]]]

#: the separator the app draws between effects
ARROW = " → "

#: what the chain area says before the first chain is shown
PRESS_START = "Press Start: the estimated chain appears here."


def chain_label(names: Sequence[str]) -> str:
    """'Compressor → Reverb' (or 'no effect' for the empty chain): fxmatch.chains.chain_label with the app's arrow."""
    return fxmatch_chain_label(names, ARROW)


#: why the playing chain plays (MainWindow keeps it, `playing_state` words it): following the estimate, frozen
#: (F / Freeze), a knob edit, an auditioned alternative, a loaded preset, refined params, a search result on offer,
#: a search result kept
SOURCES = ("estimate", "frozen", "edited", "alternative", "preset", "refined", "search", "match", "kept",
           "kept-match")

_WHY = {
    "frozen": "❄ Frozen (F)",
    "edited": "❄ Frozen on your edit",
    "alternative": "❄ Auditioning an alternative",
    "preset": "❄ A loaded preset",
    "refined": "❄ Refined on the dry and target",
    "search": "⌕ Search result on offer (Keep or Discard), the best fit to the dry and target",
    "match": "♫ Tone match on offer (Keep or Discard), fitted to the record through your own playing",
    "kept": "⌕ Kept from the search, the best fit to the dry and target",
    "kept-match": "♫ Kept from the tone match, fitted to the record through your own playing",
}

#: the state line's tooltip: what each state means
STATE_TIP = ("Why this chain plays.\n"
             "▶ the estimate: the model's chain for the target. Held: a new favourite takes over only once it has "
             "led a few analyses in a row, so the sound does not flip.\n"
             "❄ frozen: F, a knob edit, an alternative, a preset or Refine froze it; R follows the estimate again.\n"
             "⌕ from the search: it fitted the dry and the target together; the model hears only the target, so "
             "it may rate the chain lower.")

#: confidence level (fxmatch.inference.describe) -> colour of its words and bar
LEVEL_COLOURS = {"sure": theme.OK, "fairly sure": theme.OK, "not very sure": theme.WARN, "unsure": theme.BAD}


def _pct(q: float) -> str:
    return f"{100 * q:.0f} %"


def playing_state(source: str, playing: Sequence[str] | None, est_chain: Sequence[str] | None,
                  est_probability: float | None,
                  alternatives: Sequence[tuple[Sequence[str], float]] = (),
                  analyse: bool = False) -> tuple[str, str]:
    """Why `playing` plays and how it stands against the model's most likely chain: (text, colour); `analyse`:
    nothing plays (analyse-only mode), the estimate is shown."""
    known = est_chain is not None and est_probability is not None and math.isfinite(est_probability)
    if source == "estimate":
        verb = "Showing" if analyse else "▶ Playing"
        if not known:
            return "", theme.DIM
        top, top_p = max([(tuple(c), float(q)) for c, q in alternatives] + [(tuple(est_chain), est_probability)],
                         key=lambda cq: cq[1])
        if top != tuple(est_chain) and top_p > est_probability:
            return (f"{verb} the estimate, held: {chain_label(top)} is more likely now ({_pct(top_p)} against "
                    f"{_pct(est_probability)}) and takes over once it leads a few analyses in a row"), theme.WARN
        return f"{verb} the estimate: the model's most likely chain ({_pct(est_probability)})", theme.DIM
    why = _WHY.get(source, _WHY["frozen"])
    if not known or playing is None:
        return why, theme.ACCENT
    ranked = sorted([(tuple(est_chain), float(est_probability))] + [(tuple(c), float(q)) for c, q in alternatives],
                    key=lambda cq: -cq[1])
    top, top_p = ranked[0]
    if tuple(playing) == top:
        return f"{why}: {chain_label(playing)}, also the model's most likely chain ({_pct(top_p)})", theme.ACCENT
    q = dict(ranked).get(tuple(playing))
    odds = f"the model gives it {_pct(q)}" if q is not None else f"not in the model's {len(ranked)} most likely"
    return (f"{why}: {chain_label(playing)}, {odds}; its most likely is {chain_label(top)} ({_pct(top_p)}), "
            "R follows it"), theme.ACCENT


def _spec(name: str) -> EffectSpec | None:
    try:
        return get_spec(name)
    except (KeyError, ValueError):
        return None


class EffectCard(QtWidgets.QFrame):
    """One effect of the chain: its name and one knob per parameter (pedalboard units)."""

    paramEdited = QtCore.pyqtSignal(str, float)  # parameter name, value in units

    def __init__(self, name: str, params: Mapping[str, float], position: int,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.effect = name
        self.colour = QtGui.QColor(theme.effect_colour(name))
        self.knobs: dict[str, Knob] = {}
        self._extra: dict[str, float] = {}
        self.setObjectName("card")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(10, 12, 10, 8)
        lay.setSpacing(2)
        head = QtWidgets.QHBoxLayout()
        title = QtWidgets.QLabel(name)
        title.setObjectName("title")
        title.setStyleSheet(f"color: {self.colour.name()}; font-size: 12pt; font-weight: 700;")
        num = QtWidgets.QLabel(f"{position + 1}")
        num.setObjectName("dim")
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(num)
        lay.addLayout(head)
        grid = QtWidgets.QGridLayout()
        grid.setHorizontalSpacing(2)
        grid.setVerticalSpacing(0)
        spec = _spec(name)
        if spec is None:
            log.warning("unknown effect %s: shown without knobs", name)
            self._extra = {k: float(v) for k, v in params.items()}
            text = "\n".join(f"{k} = {v:g}" for k, v in self._extra.items()) or "(no parameters)"
            grid.addWidget(QtWidgets.QLabel(text), 0, 0)
        else:
            cols = spec.n_params if spec.n_params <= 4 else 3
            for i, p in enumerate(spec.params):
                knob = Knob(p, self.colour.name())
                knob.set_value(float(params.get(p.name, p.default_value)), animate=False)
                knob._shown = 0.0  # cards grow in: needles glide up from zero
                knob.valueEdited.connect(lambda v, n=p.name: self.paramEdited.emit(n, v))
                self.knobs[p.name] = knob
                grid.addWidget(knob, i // cols, i % cols)
        lay.addLayout(grid)
        lay.addStretch(1)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Preferred)

    def params(self) -> dict[str, float]:
        """Current values (units) of every parameter."""
        out = dict(self._extra)
        out.update({k: knob.value() for k, knob in self.knobs.items()})
        return out

    def set_params(self, params: Mapping[str, float], animate: bool = True) -> None:
        """Move the knobs to `params` (units), gliding when `animate`."""
        for k, v in params.items():
            if k in self.knobs:
                self.knobs[k].set_value(float(v), animate)

    def step(self, dt: float) -> bool:
        """Advance every knob's glide; True while something moves."""
        moved = False
        for knob in self.knobs.values():
            moved = knob.step(dt) or moved
        return moved

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        r = QtCore.QRectF(self.rect()).adjusted(1, 1, -1, -1)
        grad = QtGui.QLinearGradient(r.topLeft(), r.bottomLeft())
        grad.setColorAt(0, QtGui.QColor("#2a2f3b"))
        grad.setColorAt(1, QtGui.QColor("#1f232c"))
        p.setBrush(QtGui.QBrush(grad))
        p.setPen(QtGui.QPen(QtGui.QColor(theme.CARD_EDGE), 1))
        p.drawRoundedRect(r, 10, 10)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(self.colour)
        p.drawRoundedRect(QtCore.QRectF(r.left() + 10, r.top() + 3, r.width() - 20, 3), 1.5, 1.5)
        p.end()


class ChainView(QtWidgets.QWidget):
    """A row of EffectCards in chain order; glides on new estimates and emits the whole chain on user edits."""

    chainEdited = QtCore.pyqtSignal(object)  # ChainData

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.cards: list[EffectCard] = []
        self._names: tuple[str, ...] | None = None
        self._row = QtWidgets.QHBoxLayout()
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(6)
        inner = QtWidgets.QWidget()
        inner.setLayout(self._row)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        #: why the shown chain plays (the estimate, held, frozen, an edit, a search result, ...): `set_state`
        self.state_label = QtWidgets.QLabel("")
        self.state_label.setWordWrap(True)
        self.state_label.setToolTip(STATE_TIP)
        self.state_label.setVisible(False)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        outer.addWidget(self.state_label)
        outer.addWidget(scroll)
        scroll.setMinimumHeight(230)  # the cards; the state line above adds its own height
        self._message: QtWidgets.QLabel | None = None
        self._placeholder(PRESS_START)

    def _clear(self) -> None:
        while self._row.count():
            item = self._row.takeAt(0)
            w = item.widget()
            if w is not None:
                w.hide()
                w.deleteLater()
        self.cards = []
        self._message = None

    def _placeholder(self, text: str) -> None:
        self._clear()
        label = QtWidgets.QLabel(text)
        label.setObjectName("dim")
        label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {theme.DIM}; font-size: 12pt; border: 1px dashed {theme.CARD_EDGE};"
                            "border-radius: 10px; padding: 30px;")
        self._row.addWidget(label, 1)
        self._message = label

    def message(self) -> str | None:
        """The text shown instead of cards (None while cards are shown)."""
        return self._message.text() if self._message is not None else None

    def show_message(self, text: str) -> None:
        """Say `text` where the chain goes, unless a chain was already shown (a chain stays until replaced)."""
        if self._names is not None:
            return
        if self._message is None:
            self._placeholder(text)
        elif self._message.text() != text:
            self._message.setText(text)

    def set_state(self, text: str, colour: str = theme.DIM) -> None:
        """Say why the shown chain plays (`playing_state`); empty text hides the line."""
        style = f"color: {colour}; font-size: 9pt;"
        if self.state_label.text() != text or self.state_label.styleSheet() != style:
            self.state_label.setText(text)
            self.state_label.setStyleSheet(style)
        self.state_label.setVisible(bool(text))

    def state(self) -> str:
        """The line saying why the shown chain plays ('' when none)."""
        return self.state_label.text()

    def names(self) -> tuple[str, ...] | None:
        """Effect names shown (None before any chain was shown)."""
        return self._names

    def chain(self) -> ChainData:
        """The chain as shown: (effect, {param: value in units}) in order."""
        return [(c.effect, c.params()) for c in self.cards]

    def show_chain(self, chain: Sequence[tuple[str, Mapping[str, float]]], animate: bool = True) -> None:
        """Show `chain`; same effects: knobs glide to the new values; other effects: the cards are rebuilt."""
        names = tuple(n for n, _ in chain)
        if names == self._names:
            for card, (_, params) in zip(self.cards, chain):
                card.set_params(params, animate)
            return
        self._names = names
        self._clear()
        if not names:
            self._placeholder("No effect: the target sounds like the dry signal.")
            return
        arrow_style = f"color: {theme.DIM}; font-size: 20pt;"
        for i, (name, params) in enumerate(chain):
            if i:
                arrow = QtWidgets.QLabel("›")
                arrow.setStyleSheet(arrow_style)
                self._row.addWidget(arrow)
            card = EffectCard(name, params, i)
            if not animate:
                card.set_params(params, animate=False)
            card.paramEdited.connect(self._on_edit)
            self.cards.append(card)
            self._row.addWidget(card)
        self._row.addStretch(1)

    def _on_edit(self, _name: str, _value: float) -> None:
        self.chainEdited.emit(self.chain())

    def step(self, dt: float) -> bool:
        """Advance the knob glides by `dt` seconds; True while something moves."""
        moved = False
        for card in self.cards:
            moved = card.step(dt) or moved
        return moved


class ChainHeader(QtWidgets.QWidget):
    """Estimated chain, how sure the model is (words and bar), freeze / reset, and the top alternatives (click to
    audition)."""

    freezeToggled = QtCore.pyqtSignal(bool)
    resetRequested = QtCore.pyqtSignal()
    alternativeChosen = QtCore.pyqtSignal(object)  # tuple of effect names
    N_ALTERNATIVES = 3

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(2, 0, 2, 0)
        outer.setSpacing(4)
        lay = QtWidgets.QHBoxLayout()
        lay.setSpacing(8)
        alt_row = QtWidgets.QHBoxLayout()
        alt_row.setSpacing(6)
        col = QtWidgets.QVBoxLayout()
        col.setSpacing(0)
        caption = QtWidgets.QLabel("ESTIMATED CHAIN")
        caption.setObjectName("dim")
        caption.setStyleSheet(theme.CAPTION_STYLE)
        self.chain_label = QtWidgets.QLabel("–")
        self.chain_label.setObjectName("big")
        col.addWidget(caption)
        col.addWidget(self.chain_label)
        self.probability = QtWidgets.QProgressBar()
        self.probability.setRange(0, 100)
        self.probability.setValue(0)
        self.probability.setTextVisible(False)  # the words are a label beside the bar, never drawn over it
        self.probability.setFixedSize(90, 8)
        self.probability.setToolTip("the model's probability of this chain")
        #: how sure the model is, in the command line's words (fxmatch.inference.describe)
        self.probability_text = QtWidgets.QLabel("–")
        self.probability_text.setToolTip("how sure the model is of this chain")
        self.confidence: Confidence | None = None  # the last estimate's, None before one
        p_row = QtWidgets.QHBoxLayout()
        p_row.setSpacing(6)
        p_row.addWidget(self.probability_text)
        p_row.addWidget(self.probability, 0, QtCore.Qt.AlignmentFlag.AlignVCenter)
        p_row.addStretch(1)
        col.addLayout(p_row)  # under the chain's name: a long chain and the words need not share a line
        lay.addLayout(col)
        self.alt_buttons: list[QtWidgets.QPushButton] = []
        self._alt_chains: list[tuple[str, ...]] = []
        alt_caption = QtWidgets.QLabel("alternatives (click to audition):")
        alt_caption.setObjectName("dim")
        alt_row.addWidget(alt_caption)
        for i in range(self.N_ALTERNATIVES):
            b = QtWidgets.QPushButton("")
            b.setObjectName("alt")
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            b.setToolTip("audition this chain (freezes the estimate)")
            b.clicked.connect(lambda _=False, i=i: self._choose(i))
            b.setVisible(False)
            self.alt_buttons.append(b)
            alt_row.addWidget(b)
        alt_row.addStretch(1)
        lay.addStretch(1)
        self.freeze = QtWidgets.QPushButton("❄ Freeze")
        self.freeze.setCheckable(True)
        self.freeze.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.freeze.setToolTip("stop following the estimate (F); edits and auditions freeze too")
        self.freeze.toggled.connect(self.freezeToggled.emit)
        self.reset = QtWidgets.QPushButton("↺ Reset to estimate")
        self.reset.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.reset.setToolTip("unfreeze and follow the estimate again (R)")
        self.reset.clicked.connect(self.resetRequested.emit)
        lay.addWidget(self.freeze)
        lay.addWidget(self.reset)
        outer.addLayout(lay)
        outer.addLayout(alt_row)

    def _choose(self, i: int) -> None:
        if i < len(self._alt_chains):
            self.alternativeChosen.emit(self._alt_chains[i])

    def set_estimate(self, names: Sequence[str] | None, probability: float | None,
                     alternatives: Sequence[tuple[Sequence[str], float]] = ()) -> None:
        """Show the estimated chain, how sure the model is (probability 0..1, in words) and up to 3 alternatives."""
        self.chain_label.setText("–" if names is None else chain_label(names))
        known = names is not None and probability is not None and math.isfinite(probability)
        p = max(0, min(100, round(100 * probability))) if known else 0
        self.probability.setValue(p)
        if known:
            conf = describe(probability, [(chain_label(c), q) for c, q in alternatives])
            colour = LEVEL_COLOURS.get(conf.level, theme.TEXT)
            self.confidence = conf
            self.probability_text.setText(conf.text)
            self.probability_text.setStyleSheet(f"color: {colour};")
            self.probability.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; border-radius: 4px; }}")
            tip = conf.warning or f"{conf.level}: the model's probability of this chain is {p} %"
            self.probability_text.setToolTip(tip)
            self.probability.setToolTip(tip)
        else:
            self.confidence = None
            self.probability_text.setText("–")
            self.probability_text.setStyleSheet("")
        self._alt_chains = [tuple(c) for c, _ in alternatives][: self.N_ALTERNATIVES]
        for i, b in enumerate(self.alt_buttons):
            if i < len(self._alt_chains):
                b.setText(f"{alternatives[i][1] * 100:.0f}%  {chain_label(self._alt_chains[i])}")
                b.setVisible(True)
            else:
                b.setVisible(False)

    def set_frozen(self, frozen: bool) -> None:
        """Reflect the engine's freeze state without emitting freezeToggled."""
        if self.freeze.isChecked() != frozen:
            self.freeze.blockSignals(True)
            self.freeze.setChecked(frozen)
            self.freeze.blockSignals(False)

