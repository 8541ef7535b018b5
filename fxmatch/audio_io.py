"""Audio file helpers: validated reading (any rate, mono or stereo), atomic writing, windowed streaming."""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from fxmatch.errors import FxmatchInputError, require_file


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of `x` (any shape, full scale 1.0) in dBFS, computed in float64; -inf for digital silence."""
    x = np.asarray(x)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")


def _open(path: str | os.PathLike) -> sf.SoundFile:
    p = require_file(path, "file", "an audio file")
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


#: symlinks into a process's open files (/dev/stdout -> /proc/self/fd/1): always written through, never renamed onto
_FD_LINK = re.compile(r"^/(proc/[^/]+|dev)/fd/|^/dev/std(in|out|err)$")
_SPECIAL_KINDS = ((stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _write_error(path: str | os.PathLike, exc: BaseException, folder: Path | None = None) -> FxmatchInputError:
    """The one-line error for a failed write of the user's `path` (never names a temp file)."""
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    else:
        reason = _short(exc)
        try:
            if folder is not None and os.statvfs(folder).f_bavail == 0:
                reason = "No space left on device"
        except OSError:
            pass
    return FxmatchInputError(f"{path}: cannot write ({reason})")


def _via_fd_link(path: Path) -> bool:
    """True when `path` or a symlink on the way to its file is a process's open file (/dev/stdout, /proc/*/fd/N)."""
    p = os.path.abspath(path)
    for _ in range(40):
        if _FD_LINK.match(p):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return False


def output_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """(the file to write, write it through?) for an output path; FxmatchInputError if it cannot be written.

    A symlink resolves to its target (renamed onto there, the link kept); a FIFO, a character device (/dev/null)
    or a process's open file (/dev/stdout) is written through; a folder, block device or socket is refused.
    """
    name, user = os.fspath(path), Path(path)
    if name.endswith(("/", os.sep)):
        raise FxmatchInputError(f"{name}: names a folder; give a file name to write")
    try:
        mode = os.stat(user).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _write_error(name, exc) from None
    if mode is None:  # a new file, or a symlink to one
        real = Path(os.path.realpath(user))
        if not real.parent.is_dir():
            folder = real.parent if os.path.islink(user) else (user.parent if str(user.parent) else Path("."))
            raise FxmatchInputError(f"{name}: folder {folder} does not exist")
        return real, False
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or (stat.S_ISREG(mode) and _via_fd_link(user)):
        return user, True
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            raise FxmatchInputError(f"{name}: is {kind}, not a file; give a file name to write")
    if not stat.S_ISREG(mode):
        raise FxmatchInputError(f"{name}: is not a regular file; refusing to write there")
    if not os.access(user, os.W_OK):  # a write-protected file is not replaced behind its owner's back
        raise FxmatchInputError(f"{name}: cannot write ({os.strerror(errno.EACCES)})")
    return Path(os.path.realpath(user)), False


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name one existing file (same device and inode: symlinks and hard links included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), hint: str = "") -> None:
    """Fail early (FxmatchInputError) when `path` cannot be written or is one of the `inputs` (hint: how to allow)."""
    target, through = output_target(path)
    if not through:
        _probe_folder(path, target.parent)
    for source in inputs:
        if source is not None and same_file(path, source):
            tail = f"; {hint}" if hint else ""
            raise FxmatchInputError(f"{path}: is the input file {source}; refusing to overwrite it{tail}")


def _probe_folder(path: str | os.PathLike, folder: Path) -> None:
    """Check that a file can be created in `folder` (read-only folder, /proc) before the work, not after it."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".fxmatch-probe.", dir=folder)
    except OSError as exc:
        raise FxmatchInputError(f"{path}: cannot create a file in {folder} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _fsync(path: str) -> None:
    """Flush a written file to disk (so a full or failing disk is reported now, not after the rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(user: str, target: Path, write_fn: Callable[[str], None], suffix: str) -> None:
    """Write a temp file next to `target` with `write_fn`, then rename it onto `target` (never half a file)."""
    folder = target.parent
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=folder)
    except OSError as exc:
        raise FxmatchInputError(f"{user}: cannot create a file in {folder} ({exc.strerror})") from None
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, mode)  # mkstemp makes 0600; keep the replaced file's mode, else the usual one
        _fsync(tmp)
        os.replace(tmp, target)
    except (OSError, sf.LibsndfileError) as exc:
        error = _write_error(user, exc, folder)  # before the unlink frees the space a full disk is told by
        _unlink_quietly(tmp)
        raise error from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _write_through(user: str, write_fn: Callable[[str], None], suffix: str) -> None:
    """Write to a FIFO, device or open file as it is: render to a private temp file, then copy its bytes over."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fxmatch.", suffix=suffix or Path(user).suffix)
    except OSError as exc:
        raise FxmatchInputError(f"{user}: cannot create a temp file in {tempfile.gettempdir()} ({exc.strerror})") \
            from None
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb") as src, open(user, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, sf.LibsndfileError) as exc:
        raise _write_error(user, exc) from None
    finally:
        _unlink_quietly(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write(path: str | os.PathLike, write_fn: Callable[[str], None], suffix: str = "") -> None:
    """Call `write_fn(tmp_path)`, then rename the temp file onto `path` (written through for FIFOs and devices).

    Symlinks are followed (the temp file lies next to their target); write failures are FxmatchInputError naming
    `path` and the reason, and leave no temp file and no half-written output.
    """
    user = os.fspath(path)
    target, through = output_target(path)
    if through:
        _write_through(user, write_fn, suffix)
    else:
        _replace(user, target, write_fn, suffix)


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A new temporary folder beside `out` to write into, renamed to `out` when the block ends without an error and
    removed when it raises, so `out` is either whole or absent. `out` must be missing or an empty folder, and the
    folder it goes into must exist (FxmatchInputError otherwise)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FxmatchInputError(f"{out}: exists and is not an empty folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FxmatchInputError(f"{out}: folder {parent} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=parent))
    try:
        yield tmp
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write text to `path` atomically (temp file + rename)."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, _write)


def write_bytes_atomic(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write bytes to `path` atomically (temp file + rename; written through for FIFOs and devices)."""

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, _write)


def audio_format(path: str | os.PathLike) -> str:
    """The soundfile format an output path is written in: from its extension, WAV for a pipe or device."""
    ext = Path(path).suffix.lower()
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(ext)
    if fmt is None and not ext and output_target(path)[1]:
        fmt = "WAV"  # a pipe or device (/dev/stdout, /dev/null) has no extension to go by
    if fmt is None:
        raise FxmatchInputError(f"{path}: unsupported output format {ext or '(none)'}; use .wav or .flac")
    return fmt


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write float `[channels, samples]` audio atomically (format from the extension, WAV for a pipe or device;
    WAV float by default)."""
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    fmt = audio_format(path)
    if subtype is None:
        subtype = "FLOAT" if fmt == "WAV" else ("PCM_24" if fmt == "FLAC" else None)

    buffer = io.BytesIO()  # encoded in memory, so write errors are plain OSErrors with their reason
    try:
        sf.write(buffer, data.T, int(sample_rate), format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise FxmatchInputError(f"{path}: cannot encode {fmt} audio ({_short(exc)})") from None
    write_bytes_atomic(path, buffer.getbuffer())
