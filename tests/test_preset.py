import json

import numpy as np
import pytest

from fxmatch.errors import FxmatchInputError
from fxmatch.preset import Preset, read_preset, write_preset

GOOD = {
    "format": "fxmatch-preset",
    "version": 1,
    "chain": [{"effect": "Distortion", "params": {"drive_db": 20.0}}],
    "estimate": {"model": "m", "confidence": 0.8, "alternatives": [{"chain": ["Distortion"], "probability": 0.1}]},
}


def _write(tmp_path, data):
    path = tmp_path / "p.fxpreset.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_preset_round_trip_keeps_chain_and_estimate(tmp_path):
    preset = read_preset(_write(tmp_path, GOOD))
    out = tmp_path / "out.fxpreset.json"
    write_preset(out, preset)
    assert json.loads(out.read_text()) == GOOD
    assert read_preset(out) == preset
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fxpreset.json", "p.fxpreset.json"]  # no temp file left


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d["chain"][0].update(effect="Flanger"), "chain[0].effect"),
        (lambda d: d["chain"][0]["params"].update(level=1.0), "chain[0].params.level"),
        (lambda d: d["chain"][0]["params"].pop("drive_db"), "chain[0].params.drive_db"),
        (lambda d: d["chain"][0]["params"].update(drive_db=1e6), "chain[0].params.drive_db"),
        (lambda d: d["chain"][0]["params"].update(drive_db="loud"), "chain/0/params/drive_db"),
        (lambda d: d["chain"].append({"effect": "Distortion", "params": {"drive_db": 10.0}}), "chain[1].effect"),
    ],
)
def test_bad_preset_names_the_field(tmp_path, mutate, field):
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    with pytest.raises(FxmatchInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        read_preset(_write(tmp_path, data))


def test_non_finite_value_is_rejected(tmp_path):
    text = json.dumps(GOOD).replace("20.0", "NaN")
    with pytest.raises(FxmatchInputError, match="drive_db"):
        read_preset(_write(tmp_path, text))


def test_invalid_json_is_a_clear_error(tmp_path):
    with pytest.raises(FxmatchInputError, match="not valid JSON"):
        read_preset(_write(tmp_path, "{nope"))


def test_python_snippet_builds_the_same_pedalboard(tmp_path):
    preset = Preset.from_chain([("Compressor", {"threshold_db": -20, "ratio": 4, "attack_ms": 5, "release_ms": 100}),
                                ("Distortion", {"drive_db": 12.0})])
    namespace: dict = {}
    exec(preset.to_python(), namespace)  # noqa: S102 - runs the generated snippet on purpose
    x = (np.random.default_rng(0).standard_normal((1, 4410)) * 0.2).astype(np.float32)
    np.testing.assert_array_equal(namespace["board"](x, 44100), preset.to_pedalboard()(x, 44100))
