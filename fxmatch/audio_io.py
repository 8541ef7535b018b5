"""Audio file helpers: validated reading (any rate, mono or stereo), atomic writing, windowed streaming."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from fxmatch.errors import FxmatchInputError


def _open(path: str | os.PathLike) -> sf.SoundFile:
    p = Path(path)
    if not p.exists():
        raise FxmatchInputError(f"{p}: no such file")
    if p.is_dir():
        raise FxmatchInputError(f"{p}: is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise FxmatchInputError(f"{p}: empty file")
    try:
        return sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise FxmatchInputError(f"{p}: not a readable audio file ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) of an audio file, validated."""
    with _open(path) as f:
        return int(f.samplerate), int(f.channels), int(f.frames)


def _check_block(block: np.ndarray, path: str | os.PathLike) -> None:
    if not np.all(np.isfinite(block)):
        raise FxmatchInputError(f"{path}: contains NaN or infinite samples")


def read_audio(path: str | os.PathLike, max_channels: int = 2) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 `[channels, samples]` and its sample rate; clear errors for bad files."""
    with _open(path) as f:
        if f.frames == 0:
            raise FxmatchInputError(f"{path}: holds no audio samples")
        if f.channels > max_channels:
            raise FxmatchInputError(f"{path}: has {f.channels} channels; at most {max_channels} are supported")
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise FxmatchInputError(f"{path}: could not decode audio ({_short(exc)})") from None
        rate = int(f.samplerate)
    if data.shape[0] == 0:
        raise FxmatchInputError(f"{path}: holds no audio samples")
    _check_block(data, path)
    return np.ascontiguousarray(data.T), rate


def iter_audio_blocks(
    path: str | os.PathLike, block_frames: int, max_channels: int = 2
) -> Iterator[np.ndarray]:
    """Stream a file as float32 `[channels, block_frames]` blocks (bounded memory; last block may be shorter)."""
    with _open(path) as f:
        if f.channels > max_channels:
            raise FxmatchInputError(f"{path}: has {f.channels} channels; at most {max_channels} are supported")
        if f.frames == 0:
            raise FxmatchInputError(f"{path}: holds no audio samples")
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise FxmatchInputError(f"{path}: could not decode audio ({_short(exc)})") from None
            if block.shape[0] == 0:
                return
            _check_block(block, path)
            yield np.ascontiguousarray(block.T)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write_fn, suffix: str = "") -> None:
    """Call `write_fn(tmp_path)` on a temp file in the target folder, then rename it onto `path`."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise FxmatchInputError(f"{target}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should have the usual mode
        write_fn(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write text to `path` atomically (temp file + rename)."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, _write)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write float `[channels, samples]` audio atomically (format from the extension; WAV float by default)."""
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    ext = Path(path).suffix.lower()
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(ext)
    if fmt is None:
        raise FxmatchInputError(f"{path}: unsupported output format {ext or '(none)'}; use .wav or .flac")
    if subtype is None:
        subtype = "FLOAT" if fmt == "WAV" else ("PCM_24" if fmt == "FLAC" else None)

    def _write(tmp: str) -> None:
        sf.write(tmp, data.T, int(sample_rate), format=fmt, subtype=subtype)

    atomic_write(path, _write)
