"""One spec per effect: the knobs, the preset check and the normalisation all read it."""

from __future__ import annotations

import pytest

from fxmatch.effects import KNOWN_EFFECTS, get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.preset import Preset, preset_range
from gui.widgets.knob import Knob


@pytest.mark.parametrize("effect", KNOWN_EFFECTS)
def test_every_knob_preset_check_and_normalisation_come_from_the_same_spec(qtbot, effect):
    spec = get_spec(effect)
    for p in spec.params:
        lo, hi = p.valid_range
        # the preset check: pedalboard's limits, both ends included, just beyond refused
        assert preset_range(effect, p.name) == (lo, hi)
        for value in (lo, hi):
            Preset.from_chain([(effect, dict(spec.defaults(), **{p.name: value}))])
        with pytest.raises(FxmatchInputError, match=p.name):
            Preset.from_chain([(effect, dict(spec.defaults(), **{p.name: hi + 1e-3 * max(1.0, abs(hi))}))])
        # the knob: painted, spanning the same limits in the parameter's scale, a user's edit stays inside them
        knob = Knob(p)
        qtbot.addWidget(knob)
        knob.show()
        assert not knob.grab().isNull()
        assert knob.shown_norm() == pytest.approx(p.position(p.default_value))
        edits: list[float] = []
        knob.valueEdited.connect(edits.append)
        for norm in (1.5, -0.5):
            knob._edit_norm(norm)
        assert edits == [pytest.approx(hi), pytest.approx(lo, abs=1e-9)]
        knob.set_value(p.maximum, animate=False)
        assert knob.shown_norm() == pytest.approx(p.position(p.maximum))
        # the normalisation the model and the twins use: the training range, inside the limits
        assert spec.normalise(spec.defaults()).shape == (spec.n_params,)
        assert p.denormalise(0.0) == pytest.approx(p.minimum) and p.denormalise(1.0) == pytest.approx(p.maximum)
        assert lo <= p.minimum < p.maximum <= hi
