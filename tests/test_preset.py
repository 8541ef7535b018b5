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


# ----------------------------------------------------------------------------- pedalboard's limits, not training's
def _limits():
    from fxmatch.preset import PEDALBOARD_LIMITS

    return [(e, p, lim) for e, params in PEDALBOARD_LIMITS.items() for p, lim in params.items()]


def test_limits_cover_every_parameter_and_contain_the_training_ranges():
    from fxmatch.effects import KNOWN_EFFECTS, get_spec
    from fxmatch.preset import PEDALBOARD_LIMITS

    assert sorted(PEDALBOARD_LIMITS) == sorted(KNOWN_EFFECTS)
    for name in KNOWN_EFFECTS:
        spec = get_spec(name)
        assert sorted(PEDALBOARD_LIMITS[name]) == sorted(spec.param_names), name
        for p in spec.params:
            lim = PEDALBOARD_LIMITS[name][p.name]
            assert lim.low <= p.minimum < p.maximum <= lim.high, (name, p.name)
            assert {lim.low_by, lim.high_by} <= {"pedalboard", "JUCE", "fxmatch"}


@pytest.mark.parametrize(("effect", "param", "limit"), _limits(), ids=lambda v: v if isinstance(v, str) else "")
def test_pedalboard_plays_both_ends_of_every_limit(effect, param, limit):
    """Every accepted value renders finite audio (44.1 and 22.05 kHz, loud noise, other params at their defaults),
    or, for a first-order filter's cutoff at or above the Nyquist frequency, is refused at that rate."""
    import pedalboard

    from fxmatch.effects import get_spec
    from fxmatch.preset import NYQUIST_BOUND

    x = (np.random.default_rng(3).standard_normal((2, 22050)) * 0.5).astype(np.float32)
    for value in (limit.low, limit.high):
        params = dict(get_spec(effect).defaults(), **{param: value})
        preset = Preset.from_chain([(effect, params)])  # validates
        plugin = getattr(pedalboard, effect)(**params)
        for rate in (44100, 22050):
            if NYQUIST_BOUND.get(effect) == param and value >= rate / 2:
                with pytest.raises(FxmatchInputError, match=rf"chain\[0\]\.params\.{param}: .* Nyquist"):
                    preset.to_pedalboard(rate)
                continue
            y = preset.to_pedalboard(rate)(x, rate)
            assert np.isfinite(y).all(), (effect, param, value, rate)
        np.testing.assert_array_equal(preset.to_pedalboard()(x, 44100), plugin(x, 44100))


@pytest.mark.parametrize(("effect", "param", "limit"), _limits(), ids=lambda v: v if isinstance(v, str) else "")
def test_just_outside_a_limit_is_refused_and_pedalboard_agrees_where_it_sets_it(tmp_path, effect, param, limit):
    import pedalboard

    from fxmatch.effects import get_spec

    for value, by in ((limit.low - 1e-3 * max(1.0, abs(limit.low)), limit.low_by),
                      (limit.high + 1e-3 * max(1.0, abs(limit.high)), limit.high_by)):
        params = dict(get_spec(effect).defaults(), **{param: value})
        data = {"format": "fxmatch-preset", "version": 1, "chain": [{"effect": effect, "params": params}]}
        with pytest.raises(FxmatchInputError, match=rf"chain\[0\]\.params\.{param}: .* is outside what pedalboard"):
            read_preset(_write(tmp_path, data))
        if by == "pedalboard":
            with pytest.raises(ValueError):
                getattr(pedalboard, effect)(**params)


@pytest.mark.parametrize(("effect", "param", "value"), [
    ("Delay", "delay_seconds", 1.0), ("Reverb", "room_size", 1.0), ("Distortion", "drive_db", 50.0),
    ("Compressor", "threshold_db", 0.0),
])
def test_presets_people_use_load_with_a_note_about_the_training_range(tmp_path, caplog, effect, param, value):
    from fxmatch.effects import get_spec

    spec = get_spec(effect)
    params = dict(spec.defaults(), **{param: value})
    path = _write(tmp_path, {"format": "fxmatch-preset", "version": 1, "chain": [{"effect": effect, "params": params}]})
    with caplog.at_level("WARNING", logger="fxmatch"):
        preset = read_preset(path)
    assert preset.chain[0].params[param] == value
    p = spec.param(param)
    notes = preset.training_range_notes()
    assert len(notes) == 1
    assert notes[0].startswith(f"chain[0].params.{param} = {value:g}")
    assert f"training range [{p.minimum:g}, {p.maximum:g}]" in notes[0]
    assert [r.getMessage() for r in caplog.records] == [f"note: {path}: {notes[0]}"]
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_a_preset_inside_the_training_ranges_has_no_note(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="fxmatch"):
        preset = read_preset(_write(tmp_path, GOOD))
    assert preset.training_range_notes() == []
    assert caplog.records == []


def test_apply_plays_an_out_of_training_preset_and_says_so(tmp_path):
    import subprocess
    import sys

    import pedalboard
    import soundfile as sf

    preset = _write(tmp_path, {"format": "fxmatch-preset", "version": 1,
                               "chain": [{"effect": "Delay", "params": {"delay_seconds": 1.0, "feedback": 0.0,
                                                                        "mix": 0.5}}]})
    x = (np.random.default_rng(5).standard_normal((1, 24000)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, 24000, subtype="FLOAT")
    r = subprocess.run([sys.executable, "-m", "fxmatch.cli", "apply", str(preset), str(tmp_path / "in.wav"),
                        str(tmp_path / "out.wav")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "fxmatch: note: " in r.stderr and "delay_seconds = 1 s is outside the model's training range" in r.stderr
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    np.testing.assert_allclose(y.T, pedalboard.Delay(delay_seconds=1.0, feedback=0.0, mix=0.5)(x, 24000), atol=1e-6)


# ----------------------------------------------------------------------------- size cap
def test_a_preset_over_the_size_cap_is_refused_before_reading(tmp_path):
    from fxmatch.preset import MAX_PRESET_BYTES

    text = json.dumps(GOOD)
    path = _write(tmp_path, text + " " * (MAX_PRESET_BYTES + 1 - len(text)))  # valid JSON, one byte too many
    with pytest.raises(FxmatchInputError, match=rf"{MAX_PRESET_BYTES + 1} bytes; a preset file is at most 1 MB"):
        read_preset(path)
    path.write_text(text + " " * (MAX_PRESET_BYTES - len(text)))  # exactly at the cap: fine
    assert read_preset(path).effect_names == ["Distortion"]


def test_a_huge_preset_exits_2_with_one_line(tmp_path, capsys):
    import soundfile as sf

    from fxmatch.cli import main

    path = tmp_path / "big.fxpreset.json"
    with open(path, "wb") as fh:
        fh.truncate(100_000_000)  # sparse: 100 MB of zeros
    x = np.zeros((1, 100), dtype=np.float32)
    sf.write(tmp_path / "in.wav", x.T, 8000)
    assert main(["apply", str(path), str(tmp_path / "in.wav"), str(tmp_path / "out.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    said = f"fxmatch: error: {path}: 100000000 bytes; a preset file is at most 1 MB (1000000 bytes): "
    assert err == [said + "is this the right file?"]
    assert not (tmp_path / "out.wav").exists()


def test_an_endless_stream_is_cut_at_the_cap(tmp_path):
    import os
    import threading

    fifo = tmp_path / "p.fxpreset.json"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            try:
                fh.writelines(b" " * 10_000 for _ in range(300))
            except BrokenPipeError:
                pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    with pytest.raises(FxmatchInputError, match="more than 1000000 bytes"):
        read_preset(fifo)
    t.join(timeout=10)
    assert not t.is_alive()


# ----------------------------------------------------------------------------- the tone stage and the output level
TONE_CHAIN = [
    {"effect": "Distortion", "params": {"drive_db": 24.0}},
    {"effect": "LowpassFilter", "params": {"cutoff_frequency_hz": 3500.0}},
    {"effect": "HighpassFilter", "params": {"cutoff_frequency_hz": 90.0}},
    {"effect": "Gain", "params": {"gain_db": -9.0}},
]


def test_a_preset_with_a_tone_stage_and_an_output_level_round_trips_and_renders(tmp_path):
    import pedalboard

    data = {"format": "fxmatch-preset", "version": 1, "chain": TONE_CHAIN}
    preset = read_preset(_write(tmp_path, data))
    assert preset.effect_names == ["Distortion", "LowpassFilter", "HighpassFilter", "Gain"]
    assert preset.training_range_notes() == []
    out = tmp_path / "out.fxpreset.json"
    write_preset(out, preset)
    assert json.loads(out.read_text()) == data
    board = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=24.0), pedalboard.LowpassFilter(3500.0),
                                   pedalboard.HighpassFilter(90.0), pedalboard.Gain(gain_db=-9.0)])
    x = (np.random.default_rng(1).standard_normal((2, 4410)) * 0.2).astype(np.float32)
    np.testing.assert_array_equal(preset.to_pedalboard(44100)(x, 44100), board(x, 44100))
    namespace: dict = {}
    exec(preset.to_python(), namespace)  # noqa: S102 - runs the generated snippet on purpose
    np.testing.assert_array_equal(namespace["board"](x, 44100), board(x, 44100))


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c[1]["params"].update(cutoff_frequency_hz=0.0), "chain[1].params.cutoff_frequency_hz"),
    (lambda c: c[2]["params"].update(cutoff_frequency_hz=25_000.0), "chain[2].params.cutoff_frequency_hz"),
    (lambda c: c[3]["params"].update(gain_db=80.0), "chain[3].params.gain_db"),
    (lambda c: c[3]["params"].update(level=1.0), "chain[3].params.level"),
    (lambda c: c[1]["params"].pop("cutoff_frequency_hz"), "chain[1].params.cutoff_frequency_hz"),
])
def test_a_bad_tone_or_level_value_names_the_field(tmp_path, mutate, field):
    chain = json.loads(json.dumps(TONE_CHAIN))
    mutate(chain)
    with pytest.raises(FxmatchInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        read_preset(_write(tmp_path, {"format": "fxmatch-preset", "version": 1, "chain": chain}))


def test_a_cutoff_above_the_audio_nyquist_frequency_is_refused_when_rendering():
    preset = Preset.from_chain([("LowpassFilter", {"cutoff_frequency_hz": 12_000.0})])  # valid: inside 0.01..20k
    preset.to_pedalboard(44100)
    with pytest.raises(FxmatchInputError, match=r"chain\[0\]\.params\.cutoff_frequency_hz: 12000 Hz is not below "
                                                r"the Nyquist frequency of 22050 Hz audio \(11025 Hz\)"):
        preset.to_pedalboard(22050)


def test_apply_renders_a_tone_stage_and_an_output_level_through_pedalboard(tmp_path):
    import subprocess
    import sys

    import pedalboard
    import soundfile as sf

    preset = _write(tmp_path, {"format": "fxmatch-preset", "version": 1, "chain": TONE_CHAIN})
    x = (np.random.default_rng(6).standard_normal((2, 24000)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, 48000, subtype="FLOAT")
    r = subprocess.run([sys.executable, "-m", "fxmatch.cli", "apply", str(preset), str(tmp_path / "in.wav"),
                        str(tmp_path / "out.wav")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "Distortion -> LowpassFilter -> HighpassFilter, output -9.0 dB" in r.stderr
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    board = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=24.0), pedalboard.LowpassFilter(3500.0),
                                   pedalboard.HighpassFilter(90.0), pedalboard.Gain(gain_db=-9.0)])
    assert rate == 48000
    np.testing.assert_allclose(y.T, board(x, 48000), atol=1e-6)
