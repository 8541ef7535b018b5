"""`fxmatch live`: the real-time engine without a window; prints estimates, xruns and load once per second.

    fxmatch live --mode reference --target song.wav             # default devices, until Ctrl-C
    fxmatch live --mode capture --dry-channel 1 --target-channel 2 --seconds 30   # input channels count from 1
    fxmatch live --jack-dummy --mode reference --target song.wav --dry-file guitar.wav --seconds 10
    fxmatch live --list-devices
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from fxmatch.chains import chain_label
from fxmatch.errors import FxmatchInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fxmatch import shipped

    parser.add_argument("--mode", choices=("capture", "reference", "analyse"), default="reference",
                        help="capture: two inputs (dry + target); reference: live dry, target looped from --target; "
                             "analyse: one input, estimates only (default: reference)")
    parser.add_argument("--target", metavar="FILE", help="reference mode: the target, played in a loop")
    parser.add_argument("--model", help=f"exported ONNX model (default: {shipped.describe(shipped.DEFAULT_MODEL)})")
    parser.add_argument("--input-device", help="input device id or name (default: the system's)")
    parser.add_argument("--output-device", help="output device id or name (default: the system's)")
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    parser.add_argument("--rate", type=int, help="sample rate in Hz, 8000 to 384000 (default: the device's)")
    parser.add_argument("--block", type=int, default=256, help="frames per block, 16 to 8192 (default: 256)")
    parser.add_argument("--dry-channel", type=int, default=1,
                        help="input channel of the dry signal, counting from 1 (default: 1)")
    parser.add_argument("--target-channel", type=int, default=2,
                        help="input channel of the target, counting from 1 (default: 2)")
    parser.add_argument("--seconds", type=float, help="run this many seconds, then exit (default: until Ctrl-C)")
    parser.add_argument("--dry-file", metavar="FILE", help="loop the dry signal from this file instead of the input")
    parser.add_argument("--hop", type=float, default=0.25, help="analysis hop in seconds (default: 0.25)")
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto",
                        help="onnxruntime execution provider (default: auto)")
    parser.add_argument("--ab", choices=("target", "matched", "dry"), default="matched",
                        help="what the output plays (default: matched)")
    parser.add_argument("--jack-dummy", action="store_true",
                        help="start a JACK dummy server (48 kHz unless --rate) and stream through it")


#: what `--list-devices` says when PortAudio lists no device
NO_DEVICES = ("no audio devices found: connect an audio interface (and close programs that hold it), or add "
              "--jack-dummy to stream through a JACK dummy server (package jackd2, see scripts/install.sh)")


def device_listing(devices: object) -> str:
    """sounddevice's device table, or what to do when there is no device."""
    return str(devices) if len(devices) else NO_DEVICES  # type: ignore[arg-type]


def check_args(args: argparse.Namespace) -> None:
    """Refuse (FxmatchInputError, exit 2) out-of-range options before any device or server is touched."""
    from realtime.config import MAX_FRAMES, MAX_RATE, MIN_FRAMES, MIN_RATE

    if args.rate is not None and not MIN_RATE <= args.rate <= MAX_RATE:
        raise FxmatchInputError(f"live: --rate must be {MIN_RATE} to {MAX_RATE} Hz, got {args.rate}")
    if not MIN_FRAMES <= args.block <= MAX_FRAMES:
        raise FxmatchInputError(f"live: --block must be {MIN_FRAMES} to {MAX_FRAMES} frames, got {args.block}")
    for name in ("dry_channel", "target_channel"):
        v = getattr(args, name)
        if v < 1:
            raise FxmatchInputError(f"live: --{name.replace('_', '-')} counts from 1, got {v}")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise FxmatchInputError(f"live: --seconds must be > 0, got {args.seconds}")


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def _fmt_chain(chain: tuple) -> str:
    """'Distortion(drive_db=20) -> Reverb(...)', or 'no effect' (fxmatch.chains.chain_label's words)."""
    return chain_label([f"{name}({', '.join(f'{k}={v:.3g}' for k, v in params.items())})" for name, params in chain])


def status_line(engine, t: float) -> str:
    """One readable line: estimate, xruns, callback load, estimate rate."""
    tel = engine.telemetry()
    est = engine.latest_estimate()
    if est is None:
        what = "waiting for a non-silent target"
    else:
        what = f"{_fmt_chain(est.params)} p={est.probability:.2f}"
        if engine.frozen:
            what += " [frozen]"
    return (f"{t:6.1f}s  {what} | xruns {tel.xruns} | callback {tel.callback_mean_ms:.2f}/{tel.callback_p99_ms:.2f}/"
            f"{tel.callback_max_ms:.2f} ms mean/p99/max | load {100 * tel.cpu_load:.0f}% | "
            f"{tel.estimates_per_s:.1f} est/s ({tel.estimate_latency_ms:.1f} ms)"
            + (f" | safety trips {tel.safety_trips}" if tel.safety_trips else ""))


def engine_config(args: argparse.Namespace, model, in_dev: int | str | None, out_dev: int | str | None):
    """The EngineConfig of `fxmatch live`'s options: input channels count from 1 on the command line (as audio
    interfaces label them and as `fxmatch app --dry-channel` does) and from 0 in EngineConfig."""
    from realtime.config import EngineConfig

    return EngineConfig(model_path=model, mode=args.mode, input_device=in_dev, output_device=out_dev,
                        sample_rate=args.rate, block_frames=args.block, dry_channel=args.dry_channel - 1,
                        target_channel=args.target_channel - 1, target_file=args.target, hop_seconds=args.hop,
                        providers=args.provider, dry_file=args.dry_file)


def run(args: argparse.Namespace) -> int:
    import contextlib

    import sounddevice as sd

    from fxmatch import shipped
    from realtime.engine import LiveEngine
    from realtime.jack import JackDummyServer

    check_args(args)
    with contextlib.ExitStack() as stack:
        in_dev, out_dev = _device(args.input_device), _device(args.output_device)
        if args.jack_dummy:
            server = stack.enter_context(JackDummyServer(rate=args.rate or 48000, period=args.block))
            in_dev = server.device if in_dev is None else in_dev
            out_dev = server.device if out_dev is None else out_dev
        if args.list_devices:
            print(device_listing(sd.query_devices()))
            return 0
        model = shipped.model_path(args.model)
        engine = LiveEngine(engine_config(args, model, in_dev, out_dev))
        if args.mode != "analyse":
            engine.set_ab(args.ab)
        stack.callback(engine.close)
        engine.start()
        tel = engine.telemetry()
        print(f"fxmatch live: {args.mode} mode, {tel.sample_rate} Hz, {tel.block_frames} frames, latency in "
              f"{1e3 * tel.input_latency_s:.1f} ms / out {1e3 * tel.output_latency_s:.1f} ms, model "
              f"{tel.model_name} on {tel.provider}" + ("" if args.seconds else " (Ctrl-C to stop)"), flush=True)
        t0 = time.monotonic()
        try:
            while engine.running:
                elapsed = time.monotonic() - t0
                if args.seconds is not None and elapsed >= args.seconds:
                    break
                wait = 1.0 - (elapsed % 1.0)
                if args.seconds is not None:
                    wait = min(wait, max(0.0, args.seconds - elapsed))
                time.sleep(wait)
                print(status_line(engine, time.monotonic() - t0), flush=True)
        except KeyboardInterrupt:
            pass
        engine.close()
        tel = engine.telemetry()
        if tel.error:
            print(f"fxmatch: error: {tel.error}", file=sys.stderr)
            return 1
    return 0
