"""Test seams of the live engine, kept out of its production API: blocks run by hand and faults injected.

`HookedEngine` is a LiveEngine whose callback (`FaultyProcessor`) can put a NaN or a huge sample into the next dry
block, and which runs the callback's processing on blocks given by hand (`process_block`, after prepare_offline).
`HookedRemoteEngine` runs a HookedEngine in its engine process and forwards both.
"""

from __future__ import annotations

import numpy as np

from realtime.callback import BlockProcessor
from realtime.engine import LiveEngine
from realtime.remote import RemoteEngine, _Gone


class FaultyProcessor(BlockProcessor):
    """The audio callback with a fault hook: `inject` 1 puts a NaN, 2 a huge sample into the next dry block."""

    inject = 0

    def read_dry(self, indata: np.ndarray | None, frames: int) -> np.ndarray:
        """The dry block, spoilt once when a fault is pending."""
        dry = super().read_dry(indata, frames)
        if self.inject:
            dry[frames // 2] = np.nan if self.inject == 1 else 1e6
            self.inject = 0
        return dry


def run_block(engine: LiveEngine, indata: np.ndarray | None) -> np.ndarray | None:
    """Run `engine`'s callback on one input block `[frames, channels]` (None: no input) -> output block
    `[frames, output channels]` (None in analyse mode); after prepare_offline()."""
    frames = indata.shape[0] if indata is not None else engine.config.block_frames
    out = np.zeros((frames, engine._n_out), dtype=np.float32) if engine._n_out else None
    block = None if indata is None else np.ascontiguousarray(indata, dtype=np.float32)
    engine.audio.process(block, out, frames, None)
    if engine.audio.error:
        raise RuntimeError(engine.audio.error)
    return out


class HookedEngine(LiveEngine):
    """A LiveEngine with the test hooks (see the module docstring)."""

    processor_class = FaultyProcessor
    remote_ops = (*LiveEngine.remote_ops, "inject_fault", "process_block")

    def process_block(self, indata: np.ndarray | None) -> np.ndarray | None:
        """run_block on this engine."""
        return run_block(self, indata)

    def inject_fault(self, kind: str = "nan") -> None:
        """Put a NaN ("nan") or a huge sample ("runaway") into the next dry block (after a start or
        prepare_offline)."""
        if self.audio is not None:
            self.audio.inject = 1 if kind == "nan" else 2


class HookedRemoteEngine(RemoteEngine):
    """A RemoteEngine whose engine process runs a HookedEngine."""

    engine_class = HookedEngine

    def process_block(self, indata: np.ndarray | None) -> np.ndarray | None:
        """Run the callback's processing on one input block in the engine process (after prepare_offline())."""
        try:
            return self._call("process_block", indata)
        except _Gone as exc:
            raise RuntimeError(f"the engine process is gone: {self._error or exc}") from None

    def inject_fault(self, kind: str = "nan") -> None:
        """Put a NaN ("nan") or a huge sample ("runaway") into the next dry block in the engine process."""
        self._control("inject_fault", kind)
