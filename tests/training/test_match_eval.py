"""training.match_eval: the pair-set names of `fxmatch evaluate --match`, the summary and its Markdown; the
PeakFilter rule (centre within 1/3 octave, same sign)."""

from __future__ import annotations

import pytest

from fxmatch.cli import main
from fxmatch.errors import FxmatchInputError
from training.match_eval import audible_peak, parse_pair_set, peak_found, render_match_markdown, summarise


@pytest.mark.parametrize("text, expected", [
    ("musescore", ("musescore", "random", 16, 23)),
    ("musescore:8@5", ("musescore", "random", 8, 5)),
    ("musescore-peak:4", ("musescore", "peak", 4, 23)),
    ("real", ("real", "random", 16, 23)),
])
def test_pair_set_names(text, expected):
    assert parse_pair_set(text) == expected


@pytest.mark.parametrize("text", ["heldout", "musescore:x", "musescore:0", "real@y"])
def test_bad_pair_set_names_are_input_errors(text):
    with pytest.raises(FxmatchInputError):
        parse_pair_set(text)


def test_evaluate_match_with_a_bad_set_exits_2(tmp_path, capsys):
    from fxmatch.shipped import default_model

    assert main(["evaluate", str(default_model()), "nonsense", "--match", "-o", str(tmp_path / "out")]) == 2
    assert "--match: SET must be" in capsys.readouterr().err


def test_peak_found_needs_the_centre_within_a_third_octave_and_the_sign():
    truth = {"cutoff_frequency_hz": 1000.0, "gain_db": 9.0, "q": 1.0}
    near = [("PeakFilter", {"cutoff_frequency_hz": 1200.0, "gain_db": 4.0, "q": 2.0})]
    far = [("PeakFilter", {"cutoff_frequency_hz": 1300.0, "gain_db": 9.0, "q": 1.0})]
    cut = [("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": -9.0, "q": 1.0})]
    assert peak_found(truth, near) and not peak_found(truth, far) and not peak_found(truth, cut)
    assert audible_peak([("PeakFilter", truth)]) == truth
    assert audible_peak([("PeakFilter", {**truth, "gain_db": 3.0})]) is None


def test_summary_and_markdown():
    rows = [{"name": f"p{i}", "true_chain": ["PeakFilter"] if i % 2 else ["Reverb"], "match_chain": ["Reverb"],
             "blind_chain": [], "match": 0.2 + 0.1 * i, "blind": 0.5, "seconds": 3.0, "cpu_seconds": 2.0,
             **({"peak": {"match": True, "blind": False}} if i % 2 else {})} for i in range(4)]
    s = summarise(rows)
    assert s["pairs"] == 4 and s["match_beats_blind"] == 0.75 and s["peaks_found_match"] == 1.0
    assert s["per_effect"]["PeakFilter"]["pairs"] == 2
    text = render_match_markdown({"summary": s, "rows": rows, "set": "musescore:4", "model": "m"})
    assert "| median vs no effect | 35 % | 50 % |" in text and "PeakFilters found" in text
