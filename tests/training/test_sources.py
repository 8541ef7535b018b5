import numpy as np
import pytest
import soundfile

from fxmatch.audio_io import rms_dbfs
from fxmatch.errors import FxmatchInputError
from training import sources
from training.source_factory import make_source


@pytest.mark.parametrize("instrument", list(sources.INSTRUMENTS))
def test_synth_clips_are_deterministic_normalised_and_sized(instrument):
    src = sources.SynthSource(seed=3, sample_rate=22050, clip_seconds=0.5, rms_dbfs=-20.0, instruments=[instrument])
    a, b = src.clip(5), src.clip(5)
    assert a.dtype == np.float32 and a.shape == (11025,)
    assert np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 0.99 + 1e-6
    assert rms_dbfs(a) == pytest.approx(-20.0, abs=3.0)  # the peak limit may lower it a little
    assert not np.array_equal(a, src.clip(6))


def test_synth_train_and_heldout_splits_differ_and_seeds_differ():
    kwargs = {"sample_rate": 16000, "clip_seconds": 0.25}
    train = sources.SynthSource(seed=0, split="train", **kwargs)
    heldout = sources.SynthSource(seed=0, split="heldout", **kwargs)
    other = sources.SynthSource(seed=1, split="train", **kwargs)
    assert not np.array_equal(train.clip(0), heldout.clip(0))
    assert not np.array_equal(train.clip(0), other.clip(0))


def test_damped_partials_matches_direct_sum():
    sr, n = 8000, 3000
    t = np.arange(n) / sr
    freqs, rates, amps, phases = np.array([220.0, 1300.0]), np.array([2.0, 900.0]), np.array([0.5, 0.3]), np.array([0.1, 2.0])
    direct = sum(a * np.exp(-r * t) * np.sin(2 * np.pi * f * t + p) for f, r, a, p in zip(freqs, rates, amps, phases))
    assert np.allclose(sources.damped_partials(freqs, rates, amps, phases, n, sr, block=256), direct, atol=1e-12)


def _write(path, seconds, sr, kind="tone", seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    if kind == "tone":
        data = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / sr) + 0.01 * rng.standard_normal(n)
    else:
        data = np.zeros(n)
    soundfile.write(str(path), np.stack([data, data], axis=1), sr)


def test_folder_source_resamples_skips_silence_and_splits_by_file(tmp_path):
    for i in range(12):
        _write(tmp_path / f"take{i}.wav", 1.0, 48000, seed=i)
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "quiet.flac", 1.0, 48000, "silence")
    train = sources.FolderSource(tmp_path, "train", sample_rate=16000, clip_seconds=0.25, heldout_fraction=0.3)
    heldout = sources.FolderSource(tmp_path, "heldout", sample_rate=16000, clip_seconds=0.25, heldout_fraction=0.3)
    assert set(train.files).isdisjoint(heldout.files)
    assert len(train.files) + len(heldout.files) == 13
    silent_files = {p for p in train.files + heldout.files if p.name == "quiet.flac"}
    assert train.n_clips + heldout.n_clips == 4 * (13 - len(silent_files))
    clip = train.clip(1)
    assert clip.shape == (4000,) and clip.dtype == np.float32
    assert np.array_equal(clip, train.clip(1 + train.n_clips))  # wraps around
    assert rms_dbfs(clip) == pytest.approx(-20.0, abs=0.1)


def test_folder_source_errors_are_clear(tmp_path):
    with pytest.raises(FxmatchInputError, match="no WAV or FLAC"):
        sources.FolderSource(tmp_path)
    with pytest.raises(FxmatchInputError, match="does not exist"):
        sources.FolderSource(tmp_path / "missing")
    _write(tmp_path / "silent.wav", 1.0, 16000, "silence")
    with pytest.raises(FxmatchInputError, match="silent"):
        sources.FolderSource(tmp_path, heldout_fraction=0.0, sample_rate=16000)


def test_midi_source_without_fluidsynth_says_what_to_install(monkeypatch):
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    with pytest.raises(FxmatchInputError, match="fluidsynth"):
        sources.MidiSource()


def test_midi_file_bytes_is_a_standard_midi_file():
    import io

    import mido

    data = sources.midi_file_bytes(25, [(0.0, 0.5, 60, 100), (0.5, 0.5, 64, 90)], programs=[(0.5, 33)])
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert data.endswith(b"\x00\xff\x2f\x00")
    song = mido.MidiFile(file=io.BytesIO(data))
    assert song.ticks_per_beat == 480 and len(song.tracks) == 1
    at, timeline = 0, []
    for message in song.tracks[0]:
        at += message.time
        if not message.is_meta:
            timeline.append((at, message.type, getattr(message, "note", getattr(message, "program", None))))
    # at 0.5 s (480 ticks at 120 bpm) the first note ends and the program changes before the second note starts
    assert timeline == [(0, "program_change", 25), (0, "note_on", 60), (480, "program_change", 33),
                        (480, "note_off", 60), (480, "note_on", 64), (960, "note_off", 64)]


def test_make_source_rejects_unknown_kind():
    with pytest.raises(FxmatchInputError, match="unknown source kind"):
        make_source("tape")


def test_pooled_source_renders_once_caches_and_crops_reproducibly(tmp_path):
    inner = sources.SynthSource(seed=4, sample_rate=8000, clip_seconds=1.0)
    pooled = sources.PooledSource(inner, pool_size=5, clip_seconds=0.5, cache_dir=tmp_path)
    clips = [pooled.clip(i) for i in range(12)]
    assert all(c.shape == (4000,) and c.dtype == np.float32 for c in clips)
    assert rms_dbfs(clips[3]) == pytest.approx(-20.0, abs=0.1)
    cached = list(tmp_path.glob("pool-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (5, 8000)
    again = sources.PooledSource(sources.SynthSource(seed=4, sample_rate=8000, clip_seconds=1.0), 5, 0.5,
                                 cache_dir=tmp_path)
    assert np.array_equal(again.clip(7), clips[7])
    # clip 7 is pool clip 2 again, but another window of it
    assert not np.array_equal(clips[2], clips[7])
    other = sources.PooledSource(sources.SynthSource(seed=5, sample_rate=8000, clip_seconds=1.0), 5, 0.5,
                                 cache_dir=tmp_path)
    assert other.cache_path() != again.cache_path()


def test_mixed_source_picks_sources_by_weight_reproducibly():
    a = sources.SynthSource(seed=1, sample_rate=8000, clip_seconds=0.25, instruments=["bass"])
    b = sources.SynthSource(seed=2, sample_rate=8000, clip_seconds=0.25, instruments=["drums"])
    mixed = sources.MixedSource({"a": a, "b": b}, {"a": 0.25, "b": 0.75}, seed=3)
    picks = [mixed.source_of(i) for i in range(400)]
    assert 0.18 < picks.count("a") / 400 < 0.32
    assert picks == [mixed.source_of(i) for i in range(400)]
    i = picks.index("a")
    assert np.array_equal(mixed.clip(i), a.clip(i))
    with pytest.raises(FxmatchInputError, match="source_mix"):
        make_source("mix")
    with pytest.raises(FxmatchInputError, match="unknown source kind"):
        make_source("mix", mix={"synth": 1.0, "tape": 1.0})


needs_fluidsynth = pytest.mark.skipif(
    sources.shutil.which("fluidsynth") is None or sources.find_soundfont() is None,
    reason="needs the fluidsynth binary and a General MIDI soundfont (scripts/install.sh installs them)")


@needs_fluidsynth
def test_midi_clips_rendered_together_are_dry_distinct_phrases():
    midi = sources.MidiSource(seed=0, sample_rate=22050, clip_seconds=1.0)
    together = midi.clips([0, 1, 2])
    assert all(c.shape == (22050,) for c in together)
    assert all(rms_dbfs(c) == pytest.approx(-20.0, abs=0.2) for c in together)
    assert all(np.array_equal(a, b) for a, b in zip(together, midi.clips([0, 1, 2])))  # reproducible
    assert not np.allclose(together[0], together[1])


@needs_fluidsynth
def test_midi_pool_through_make_source(tmp_path):
    pooled = make_source("midi", sample_rate=22050, clip_seconds=0.5, midi_pool=3, cache_dir=tmp_path)
    assert isinstance(pooled, sources.PooledSource)
    assert pooled.clip(4).shape == (11025,)
    held = make_source("midi", split="heldout", sample_rate=22050, clip_seconds=0.5, midi_pool=3)
    assert held.pool_size == 64


@needs_fluidsynth
def test_midi_phrases_are_a_function_of_seed_split_and_index():
    train = sources.MidiSource(seed=0, sample_rate=22050, clip_seconds=1.0)
    assert train.phrase(3) == sources.MidiSource(seed=0, sample_rate=22050, clip_seconds=1.0).phrase(3)
    assert train.phrase(3) != sources.MidiSource(seed=0, split="heldout", sample_rate=22050, clip_seconds=1.0).phrase(3)
    assert train.phrase(3) != sources.MidiSource(seed=1, sample_rate=22050, clip_seconds=1.0).phrase(3)
    program, notes = train.phrase(3)
    assert 0 <= program < 128 and notes and all(0 <= o < 1.0 and d > 0 and 0 < p < 128 for o, d, p, _ in notes)


@needs_fluidsynth
def test_a_midi_clip_is_the_same_phrase_rendered_alone_or_in_a_batch():
    """FluidSynth places events on its own block grid, so a clip in a later slot of a batch may move by a few
    samples; aligned, it is the clip rendered alone (no tail of the previous phrase, same level)."""
    midi = sources.MidiSource(seed=0, sample_rate=22050, clip_seconds=1.0)
    batched, alone = midi.clips([0, 5])[1], midi.clip(5)
    edge = 64
    lags = range(-16, 17)
    errors = [np.sqrt(np.mean((np.roll(batched, lag)[edge:-edge] - alone[edge:-edge]) ** 2)) for lag in lags]
    best = int(np.argmin(errors))
    assert errors[best] < 0.05 * np.sqrt(np.mean(alone**2)), (list(lags)[best], errors[best])
    assert rms_dbfs(batched) == pytest.approx(rms_dbfs(alone), abs=0.2)
