"""The audio stream: devices, opening and closing the sounddevice stream, and the process tuned while it runs.

`AudioStream` resolves the config's devices (FxmatchInputError naming what to do, `device_error`), opens a duplex,
output-only or input-only stream on a realtime.callback.BlockProcessor's callbacks, closes it without ever hanging,
and while streaming shortens Python's switch interval and freezes garbage collection (`tune` / `untune`).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable

from fxmatch.errors import FxmatchInputError
from realtime.callback import BlockProcessor
from realtime.config import EngineConfig

log = logging.getLogger("fxmatch.realtime")


def device_error(which: str, device: int | str | None, reason: str, ui: str = "cli") -> str:
    """The one-line error for an unusable `which` ("input"/"output") device, telling `ui`'s user what to do."""
    if ui == "app":
        todo = f"choose one in the set-up panel's {which.capitalize()} list (↻ lists the devices again)"
    else:
        todo = (f"pick one with --{which}-device (list them with `fxmatch live --list-devices`; --jack-dummy "
                f"streams through a JACK dummy server)")
    if device is None:
        return f"no default {which} device ({reason}); {todo}"
    return f"{which} device {device}: {reason}; {todo}"


class AudioStream:
    """The engine's sounddevice stream and the scheduling tuned for it (see the module docstring)."""

    def __init__(self, config: EngineConfig) -> None:
        """Nothing is opened until open()."""
        self.config = config
        self.stream = None
        self.latency = (0.0, 0.0)  # (input, output) in s, as the stream reports them
        self.saved_switch: float | None = None
        self.gc_was_enabled: bool | None = None  # None: garbage collection not frozen by tune()

    def channels_needed(self) -> tuple[int, int]:
        """(input channels, output channels wanted: 0 or 1) of the config's mode and files."""
        c = self.config
        if c.mode == "analyse":
            return c.target_channel + 1, 0
        need = []
        if c.dry_file is None:
            need.append(c.dry_channel + 1)
        if c.mode == "capture":
            need.append(c.target_channel + 1)
        return (max(need) if need else 0), 1

    def resolve(self) -> tuple[int | None, int | None, int, int, int]:
        """(input device, output device, input channels, output channels, rate) or FxmatchInputError."""
        import sounddevice as sd

        c = self.config
        n_in, want_out = self.channels_needed()
        in_dev = out_dev = None
        n_out = 0
        rate = c.sample_rate
        try:
            if n_in:
                info = sd.query_devices(c.input_device, "input")
                in_dev = int(info["index"])
                if info["max_input_channels"] < n_in:
                    raise FxmatchInputError(
                        f"input device {info['name']!r} has {info['max_input_channels']} input channel(s); "
                        f"{c.mode} mode needs channel {n_in} (channels count from 1)")
                rate = rate or int(info["default_samplerate"])
            if want_out:
                info = sd.query_devices(c.output_device, "output")
                out_dev = int(info["index"])
                n_out = max(1, min(int(c.output_channels), int(info["max_output_channels"])))
                rate = rate or int(info["default_samplerate"])
        except FxmatchInputError:
            raise
        except (ValueError, sd.PortAudioError) as exc:
            which = "input" if in_dev is None and n_in else "output"
            dev = c.input_device if which == "input" else c.output_device
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxmatchInputError(device_error(which, dev, msg, c.ui)) from None
        try:
            if n_in:
                sd.check_input_settings(in_dev, channels=n_in, dtype="float32", samplerate=rate)
            if n_out:
                sd.check_output_settings(out_dev, channels=n_out, dtype="float32", samplerate=rate)
        except (ValueError, sd.PortAudioError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxmatchInputError(f"the device does not accept {rate} Hz with {n_in} in / {n_out} out channels "
                                    f"({msg})") from None
        return in_dev, out_dev, n_in, n_out, int(rate)

    def open(self, processor: BlockProcessor, devices: tuple[int | None, int | None, int, int, int],
             finished: Callable[[], None]) -> None:
        """Open (not start) the stream on `processor`'s callbacks with `devices` from resolve() (FxmatchInputError
        when the device refuses); `finished` runs on PortAudio's thread when the stream ends."""
        import sounddevice as sd

        c = self.config
        in_dev, out_dev, n_in, n_out, rate = devices
        kwargs = {"samplerate": rate, "blocksize": c.block_frames, "dtype": "float32", "latency": c.latency,
                  "finished_callback": finished}
        try:
            if n_in and n_out:
                stream = sd.Stream(device=(in_dev, out_dev), channels=(n_in, n_out), callback=processor.duplex,
                                   **kwargs)
            elif n_out:
                stream = sd.OutputStream(device=out_dev, channels=n_out, callback=processor.output, **kwargs)
            else:
                stream = sd.InputStream(device=in_dev, channels=n_in, callback=processor.input, **kwargs)
        except (ValueError, sd.PortAudioError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxmatchInputError(f"could not open the audio stream at {rate} Hz, {c.block_frames} frames "
                                    f"({msg})") from None
        self.stream = stream
        lat = stream.latency
        self.latency = (float(lat[0]), float(lat[1])) if isinstance(lat, tuple) else (
            (float(lat), 0.0) if n_in and not n_out else (0.0, float(lat)))

    def start(self) -> None:
        """Start the opened stream (FxmatchInputError when PortAudio refuses; the stream is closed then)."""
        import sounddevice as sd

        try:
            self.stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise FxmatchInputError(f"could not start the audio stream ({exc})") from None

    @property
    def cpu_load(self) -> float:
        """PortAudio's CPU load estimate of the stream (0 when none is open)."""
        stream = self.stream
        if stream is None:
            return 0.0
        try:
            return float(stream.cpu_load)
        except Exception:  # noqa: BLE001 - a closing stream
            return 0.0

    def close(self, timeout: float = 3.0) -> None:
        """Abort and close the stream in a helper thread, waiting at most `timeout` s (then abandoning it)."""
        stream, self.stream = self.stream, None
        if stream is None:
            return

        def close() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # closing a broken stream: nothing more to do
                log.debug("closing the stream failed", exc_info=True)

        t = threading.Thread(target=close, name="fxmatch-stream-close", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            log.warning("the audio stream did not close within %.0f s; abandoning it", timeout)

    def tune(self) -> None:
        """Short GIL switch interval and garbage collection frozen (restored by untune)."""
        c = self.config
        if c.gil_switch_interval_s and self.saved_switch is None:
            self.saved_switch = sys.getswitchinterval()
            sys.setswitchinterval(float(c.gil_switch_interval_s))
        if c.gc_freeze and self.gc_was_enabled is None:
            self.gc_was_enabled = gc.isenabled()
            gc.collect()
            gc.freeze()  # what exists now is never scanned again
            gc.disable()

    def untune(self) -> None:
        """Restore the switch interval and garbage collection tune() changed."""
        if self.saved_switch is not None:
            sys.setswitchinterval(self.saved_switch)
            self.saved_switch = None
        if self.gc_was_enabled is not None:
            gc.unfreeze()
            if self.gc_was_enabled:
                gc.enable()
            self.gc_was_enabled = None
