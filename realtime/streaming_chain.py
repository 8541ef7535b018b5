"""The matched chain on live audio: pedalboard plugins processed block by block (`reset=False`).

Everything that allocates happens outside the audio callback: `StreamingChain` builds the pedalboard objects and
primes them (one silent block, so that pedalboard prepares its buffers before the callback sees them); the
`ChainPlayer` receives finished chains from a control thread and swaps references in the callback. What the
callback does per block:

* parameter glide: when a chain's target parameters change, the current values approach them exponentially
  (time constant `glide_ms`) in each parameter's own scale (log parameters glide in log), a few numpy operations
  on preallocated arrays plus one `setattr` per parameter on the plugin (small Python floats, freed at once);
* `Pedalboard.process(block, sample_rate, buffer_size, reset=False)`: pedalboard copies the block into a JUCE
  buffer and returns a *new* float32 array of the block's shape (frames x channels x 4 bytes, freed when the next
  block replaces it); with a constant block size it does not re-prepare, so memory stays flat (tests check the
  resident size over thousands of blocks);
* chain changes: the new chain fades in while the old one fades out (equal-power, `crossfade_ms`), both processed
  during the fade.

`Pedalboard.reset()` re-prepares the plugins (tens of ms for Reverb/Delay): never called in the callback. A safety
trip instead swaps in the *spare*, an identical primed chain built alongside each published chain; the control
thread builds a new spare afterwards. The callback never drops the last reference to a chain (the player's
`collect()`, called from the control thread, releases retired ones), so no plugin is destroyed in the callback.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pedalboard

from fxmatch.errors import FxmatchInputError

ChainSpec = tuple[tuple[str, dict[str, float]], ...]


def plugin_class(name: str) -> type:
    """The pedalboard plugin class `name` (FxmatchInputError when pedalboard has none)."""
    cls = getattr(pedalboard, str(name), None)
    if not isinstance(cls, type) or not issubclass(cls, pedalboard.Plugin) or cls is pedalboard.Plugin:
        raise FxmatchInputError(f"unknown effect {name!r} (not a pedalboard plugin)")
    return cls


def validate_chain(chain: Sequence[tuple[str, Mapping[str, float]]]) -> ChainSpec:
    """Check a chain [(effect, {param: value})] with the preset's rules (fxmatch.preset.validate_preset_dict:
    known effect, every parameter present, finite and within pedalboard's limits) -> the chain as a ChainSpec.
    FxmatchInputError (one line, naming the field) when it breaks one."""
    from fxmatch.preset import FORMAT, VERSION, validate_preset_dict

    try:
        items = list(chain)
    except TypeError:
        raise FxmatchInputError("a chain must be a sequence of (effect, {param: value}) pairs") from None
    entries = []
    for item in items:
        try:
            name, params = item
            params = dict(params)
        except (TypeError, ValueError):
            raise FxmatchInputError(f"chain entry {item!r} is not an (effect, {{param: value}}) pair") from None
        values: dict[str, float] = {}
        for p, v in params.items():
            try:
                values[str(p)] = float(v)
            except (TypeError, ValueError):
                raise FxmatchInputError(f"{name}.{p}: {v!r} is not a number") from None
        entries.append({"effect": str(name), "params": values})
    validate_preset_dict({"format": FORMAT, "version": VERSION, "chain": entries}, source="chain")
    return tuple((e["effect"], e["params"]) for e in entries)


class StreamingChain:
    """One chain's pedalboard objects with gliding parameters; `process` is called only by the audio callback.

    `spec` is a chain checked by validate_chain (or a model's estimate, valid by construction); it is not checked
    again here. `scales[(effect, param)]` is "log" or "linear" (default linear): the scale the parameter glides in.
    """

    def __init__(self, spec: Sequence[tuple[str, Mapping[str, float]]], sample_rate: int, block_frames: int,
                 scales: Mapping[tuple[str, str], str] | None = None, glide_ms: float = 60.0, channels: int = 1):
        self.spec: ChainSpec = tuple((str(n), {str(k): float(v) for k, v in p.items()}) for n, p in spec)
        self.names = tuple(name for name, _ in self.spec)
        self.sample_rate = int(sample_rate)
        self.block_frames = int(block_frames)
        self.channels = int(channels)
        self.board = pedalboard.Pedalboard([plugin_class(n)(**p) for n, p in self.spec])
        self.scales = dict(scales or {})
        self.glide_ms = float(glide_ms)
        slots, is_log, values = [], [], []
        for plugin, (name, params) in zip(self.board, self.spec):
            for p, v in params.items():
                log_scale = self.scales.get((name, p)) == "log" and v > 0
                slots.append((plugin, p))
                is_log.append(log_scale)
                values.append(math.log(v) if log_scale else v)
        self._slots = slots
        self._is_log = np.array(is_log, dtype=bool)
        self._any_log = bool(self._is_log.any())
        self._cur = np.array(values, dtype=np.float64)
        self._target = self._cur.copy()
        self._step = np.zeros_like(self._cur)
        self._units = np.zeros_like(self._cur)
        self._target_version = 0
        self._seen_version = 0
        self.alpha = 1.0 - math.exp(-self.block_frames / max(1e-9, self.glide_ms * 1e-3 * self.sample_rate))
        self.prime()

    def prime(self) -> None:
        """Process one silent block so that pedalboard allocates and prepares now, not in the callback."""
        self.board.process(np.zeros((self.channels, self.block_frames), dtype=np.float32), self.sample_rate,
                           self.block_frames, reset=False)

    def same_effects(self, names: Sequence[str]) -> bool:
        """Whether this chain holds exactly these effects in this order."""
        return self.names == tuple(names)

    def set_targets(self, params: Sequence[Mapping[str, float]]) -> None:
        """New target values (control thread): one {param: value} per effect in chain order; glides there."""
        new = self._target.copy()
        i = 0
        for (name, current), values in zip(self.spec, params):
            for p in current:
                v = float(values.get(p, current[p]))
                if not math.isfinite(v):
                    raise FxmatchInputError(f"{name}.{p}: {v} is not finite")
                new[i] = math.log(v) if self._is_log[i] and v > 0 else v
                i += 1
        self._target = new  # atomic reference swap; the callback picks it up at its next block
        self._target_version += 1

    def target_spec(self) -> ChainSpec:
        """The chain with its target parameter values (what it is gliding to) in pedalboard units."""
        t = self._target
        out, i = [], 0
        for name, params in self.spec:
            d = {}
            for p in params:
                d[p] = float(math.exp(t[i]) if self._is_log[i] else t[i])
                i += 1
            out.append((name, d))
        return tuple(out)

    def copy_state_from(self, other: StreamingChain) -> None:
        """Take over another chain's current and target values (control side, or callback: no allocation)."""
        if other._cur.shape == self._cur.shape:
            self._cur[:] = other._cur
            self._target = other._target
            self._target_version = other._target_version
            self._seen_version = -1  # apply at the next block

    def _glide(self) -> None:
        target = self._target
        if self._seen_version != self._target_version:
            self._seen_version = self._target_version
            self._gliding = True
        elif not getattr(self, "_gliding", False):
            return
        np.subtract(target, self._cur, out=self._step)
        if float(np.max(np.abs(self._step, out=self._units))) < 1e-5:
            self._cur[:] = target
            self._gliding = False
        else:
            self._step *= self.alpha
            self._cur += self._step
        if self._any_log:
            np.exp(self._cur, out=self._units, where=self._is_log)
            np.copyto(self._units, self._cur, where=~self._is_log)
        else:
            self._units[:] = self._cur
        for (plugin, name), v in zip(self._slots, self._units):
            setattr(plugin, name, float(v))

    def process(self, block: np.ndarray) -> np.ndarray:
        """Callback: glide params one block, then run the plugins on `[channels, frames]` float32 (reset=False)."""
        if self._slots:
            self._glide()
        return self.board.process(block, self.sample_rate, self.block_frames, reset=False)


class ChainPlayer:
    """Plays one StreamingChain at a time in the callback; chains arrive from a control thread.

    Control side: `publish(chain, spare)` (a new chain, faded in) and `collect()` (release retired chains).
    Callback side: `process(block, out)` and `trip()` (safety: swap to the spare at once).
    """

    def __init__(self, sample_rate: int, block_frames: int, crossfade_ms: float = 30.0, max_frames: int = 8192):
        self.sample_rate = int(sample_rate)
        self.block_frames = int(block_frames)
        self.fade_len = max(1, round(crossfade_ms * 1e-3 * sample_rate))
        self.current: StreamingChain | None = None
        self.spare: StreamingChain | None = None
        self.old: StreamingChain | None = None
        self._pending: tuple[int, StreamingChain, StreamingChain | None] | None = None
        self._taken = 0
        self._published = 0
        self._fade_pos = 0
        self._owned: list[StreamingChain] = []  # every chain the callback may still hold (released in collect)
        self._lock = threading.Lock()  # control threads only; the callback never takes it
        self._ramp = np.arange(max_frames, dtype=np.float64)
        self._theta = np.zeros(max_frames, dtype=np.float64)
        self._g_old = np.zeros(max_frames, dtype=np.float32)
        self._g_new = np.zeros(max_frames, dtype=np.float32)
        self.trips_pending = 0  # spares used by the callback and not yet rebuilt (read by the control thread)

    # -- control thread ---------------------------------------------------------------------------------------------

    def publish(self, chain: StreamingChain, spare: StreamingChain | None = None) -> None:
        """Hand a primed chain (and its primed identical spare) to the callback, which fades it in."""
        with self._lock:
            self._owned.extend(c for c in (chain, spare) if c is not None)
            self._published += 1
            self._pending = (self._published, chain, spare)
        self.collect()

    def replace_spare(self, spare: StreamingChain) -> None:
        """Give the playing chain a fresh spare after a trip used the last one."""
        with self._lock:
            self._owned.append(spare)
            if self.spare is None:
                self.spare = spare
        self.collect()

    def collect(self) -> None:
        """Release chains the callback no longer holds (control thread: plugins are destroyed here)."""
        with self._lock:
            pending = self._pending
            keep = {id(c) for c in (self.current, self.spare, self.old) if c is not None}
            if pending is not None and pending[0] != self._taken:
                keep.update(id(c) for c in pending[1:] if c is not None)
            self._owned = [c for c in self._owned if id(c) in keep]

    @property
    def playing(self) -> StreamingChain | None:
        """The chain the callback plays (or is fading to); a not yet taken pending one counts as playing."""
        pending = self._pending
        if pending is not None and pending[0] != self._taken:
            return pending[1]
        return self.current

    # -- audio callback --------------------------------------------------------------------------------------------

    def trip(self) -> None:
        """Safety: drop the chain's state now by swapping to the spare (no allocation, no reset call)."""
        self.old = None
        self._fade_pos = self.fade_len
        if self.spare is not None and self.current is not None:
            self.spare.copy_state_from(self.current)
            self.current, self.spare = self.spare, None
            self.trips_pending += 1

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Run the chain on `block [1, frames]` into `out [frames]` (dry copy when no chain is playing)."""
        frames = block.shape[1]
        pending = self._pending
        if pending is not None and pending[0] != self._taken:
            self._taken = pending[0]
            if self.old is None:
                self.old = self.current
                self._fade_pos = 0
            # else: a fade is under way; the half-faded-in chain is dropped, the old one keeps fading out
            self.current, self.spare = pending[1], pending[2]
        cur = self.current
        if cur is None:
            out[:frames] = block[0]
        else:
            out[:frames] = cur.process(block)[0]
        old = self.old
        if old is None:
            return
        old_out = old.process(block)[0]
        theta = self._theta[:frames]
        np.add(self._ramp[:frames], self._fade_pos, out=theta)
        np.minimum(theta, self.fade_len, out=theta)
        theta *= (math.pi / 2) / self.fade_len
        g_new, g_old = self._g_new[:frames], self._g_old[:frames]
        np.sin(theta, out=g_new, casting="same_kind")
        np.cos(theta, out=g_old, casting="same_kind")
        out[:frames] *= g_new
        old_out *= g_old
        out[:frames] += old_out
        self._fade_pos += frames
        if self._fade_pos >= self.fade_len:
            self.old = None
