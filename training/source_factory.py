"""The dry source of a kind named in a config: one factory above the sources (`training.sources`) and the recorded
drum kits (`training.recorded`, which builds on `training.sources`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fxmatch.errors import FxmatchInputError
from training.sources import (
    SECOND_SOUNDFONTS,
    SOURCE_KINDS,
    DrySource,
    FolderSource,
    MidiSource,
    MixedSource,
    PooledSource,
    SynthSource,
)


def make_source(
    kind: str,
    split: str = "train",
    seed: int = 0,
    sample_rate: int = 44100,
    clip_seconds: float = 2.0,
    rms_dbfs: float = -20.0,
    path: str | None = None,
    heldout_fraction: float = 0.1,
    instruments: Sequence[str] | dict[str, float] | None = None,
    mix: Mapping[str, float] | None = None,
    midi_pool: int = 0,
    soundfont: str | None = None,
    cache_dir: str | Path | None = None,
    soundfont2: str | None = None,
) -> DrySource:
    """The source of `kind`: 'synth', 'folder' (files under `path`), 'midi' (FluidSynth with `soundfont`, or `path`
    for older configs), 'midi2' (the same phrases through a second soundfont, `soundfont2`, default the first of
    SECOND_SOUNDFONTS that exists), 'kit' (grooves on recorded drum kits, `training.recorded.DrumKitSource`) or 'mix'
    (`mix` maps those kinds to weights).

    With `midi_pool` > 0, MIDI clips come from a pool of that many phrases twice the clip length, rendered once and
    cached in `cache_dir` (the held-out split's pool is an eighth of it, at least 64 phrases).
    """
    if kind == "mix":
        if not mix:
            raise FxmatchInputError("the 'mix' source needs source_mix (kind: weight, e.g. {synth: 0.5, midi: 0.5})")
        unknown = [k for k in mix if k not in SOURCE_KINDS or k == "mix"]
        if unknown:
            raise FxmatchInputError(f"source_mix: unknown source kind {unknown[0]!r}; known: "
                                    f"{', '.join(k for k in SOURCE_KINDS if k != 'mix')}")
        parts = {k: make_source(k, split, seed, sample_rate, clip_seconds, rms_dbfs, path, heldout_fraction,
                                instruments, None, midi_pool, soundfont, cache_dir, soundfont2) for k in mix}
        return MixedSource(parts, mix, seed)
    if kind == "synth":
        return SynthSource(seed, split, sample_rate, clip_seconds, rms_dbfs, instruments)
    if kind == "folder":
        if not path:
            raise FxmatchInputError("the 'folder' source needs a path (source_path in the config)")
        return FolderSource(path, split, sample_rate, clip_seconds, rms_dbfs, heldout_fraction)
    if kind == "kit":
        from training.recorded import DrumKitSource  # pyroomacoustics and the kits load only when asked for

        return DrumKitSource(seed, split, sample_rate, clip_seconds, rms_dbfs)
    if kind in ("midi", "midi2"):
        font = soundfont or path
        if kind == "midi2":
            font = soundfont2 or next((f for f in SECOND_SOUNDFONTS if Path(f).is_file()), None)
            if font is None:
                raise FxmatchInputError(f"the midi2 source needs a second soundfont ({', '.join(SECOND_SOUNDFONTS)}; "
                                        "Debian: apt install timgm6mb-soundfont)")
        if midi_pool > 0:
            size = midi_pool if split == "train" else max(64, midi_pool // 8)
            inner = MidiSource(seed, split, sample_rate, 2 * clip_seconds, rms_dbfs, font)
            return PooledSource(inner, size, clip_seconds, rms_dbfs, cache_dir)
        return MidiSource(seed, split, sample_rate, clip_seconds, rms_dbfs, font)
    raise FxmatchInputError(f"unknown source kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
