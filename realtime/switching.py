"""A/B and chain switching, the control side: which chain plays, which source the output plays.

`ChainSwitch` builds streaming chains and hands them to the callback's `ChainPlayer` (a glide when the effects
stay the same, else a crossfade to a fresh chain with a spare beside it), rebuilds spares the callback used up
after a safety trip, and sets the `ABMixer`'s position. Its methods run on control threads under the engine's lock
(realtime.engine.LiveEngine); the callback only reads the player and the mixer it was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from realtime.ab import ABMixer
from realtime.config import MAX_FRAMES, EngineConfig
from realtime.streaming_chain import ChainPlayer, StreamingChain

ChainSpec = Sequence[tuple[str, Mapping[str, float]]]


class ChainSwitch:
    """The playing chain and the A/B position (see the module docstring)."""

    def __init__(self, config: EngineConfig, scales: Mapping[tuple[str, str], str]) -> None:
        """`scales` maps (effect, parameter) to the scale parameters glide in (the model's vocabulary)."""
        self.config = config
        self.scales = scales
        self.rate = 0  # 0 until reset(): nothing is played before the stream's rate is known
        self.player = ChainPlayer(48000, config.block_frames, config.crossfade_ms, MAX_FRAMES)
        self.mixer: ABMixer | None = None

    def reset(self, rate: int, position: str) -> None:
        """A new player and mixer at `rate` Hz (a start), the mixer at A/B `position`."""
        c = self.config
        self.rate = rate
        self.player = ChainPlayer(rate, c.block_frames, c.crossfade_ms, MAX_FRAMES)
        self.mixer = ABMixer(rate, c.crossfade_ms, loudness_match=c.loudness_match, max_frames=MAX_FRAMES,
                             position=position)

    def build(self, spec: ChainSpec) -> StreamingChain:
        """A streaming chain of `spec` at the current rate and block size."""
        return StreamingChain(spec, self.rate, self.config.block_frames, self.scales, self.config.glide_ms)

    def play(self, spec: ChainSpec, force: bool = False) -> None:
        """Play `spec` (a validated chain or an estimate's): glide when the playing chain has the same effects, else
        fade to a freshly built one (`force`: always a fresh one). Nothing before reset()."""
        if not self.rate:
            return
        playing = self.player.playing
        if playing is not None and not force and playing.same_effects([n for n, _ in spec]):
            playing.set_targets([p for _, p in spec])
            return
        self.player.publish(self.build(spec), self.build(spec))

    def set_position(self, position: str) -> None:
        """Crossfade the output to "target", "matched" or "dry" (no-op before reset())."""
        if self.mixer is not None:
            self.mixer.set_position(position)

    def current(self, manual: ChainSpec | None) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing (targets of the glides), else the chain set by hand `manual`, else ()."""
        playing = self.player.playing
        if playing is not None:
            return playing.target_spec()
        return tuple((n, dict(p)) for n, p in (manual or ()))

    def housekeeping(self) -> None:
        """Control thread: rebuild the spare the callback swapped in after a trip; free retired chains."""
        player = self.player
        if player.trips_pending and player.spare is None and player.current is not None:
            player.trips_pending = 0
            player.replace_spare(self.build(player.current.target_spec()))
        player.collect()
