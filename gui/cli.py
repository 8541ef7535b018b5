"""`fxmatch app [--model M.onnx] [--screenshot DIR] [--jack-dummy] [engine options]`: the desktop app.

`--screenshot DIR` renders the main states offscreen into PNGs (idle, running or start-error, frozen with an edit)
and exits; it starts the engine with the given options like the Start button would, and never writes the
settings. `--jack-dummy` starts a JACK dummy server for the app's lifetime and selects it as input and output
(as `fxmatch live --jack-dummy`). Input channels count from 1, as in `fxmatch live`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from fxmatch.commands.checks import positive
from fxmatch.errors import FxmatchInputError

log = logging.getLogger(__name__)

MODES = ("capture", "reference", "analyse")


def _device(text: str) -> int | str:
    return int(text) if text.strip().lstrip("-").isdigit() else text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="exported fxmatch ONNX model (default: the last one used, else the shipped model)")
    parser.add_argument("--screenshot", metavar="DIR",
                        help="render the main states offscreen into PNGs in DIR and exit")
    parser.add_argument("--screenshot-seconds", type=float, default=4.0, metavar="S",
                        help="how long to stream before the 'running' screenshot (default: 4 s)")
    parser.add_argument("--settings", metavar="FILE", help="settings file (INI; default: the user's fxmatch settings)")
    parser.add_argument("--start", action="store_true", help="start the engine right away")
    parser.add_argument("--fps", type=float, default=40.0, help="display update rate (default: 40 frames/s)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the audio engine in the app's process (by default it runs in its own process, "
                             "so that drawing the window cannot delay the audio callback)")
    eng = parser.add_argument_group("engine (override the remembered set-up)")
    eng.add_argument("--mode", choices=MODES, help="capture: dry + target inputs; reference: target file + dry input; "
                     "analyse: target input only")
    eng.add_argument("--input-device", type=_device, metavar="ID|NAME", help="sounddevice input device")
    eng.add_argument("--output-device", type=_device, metavar="ID|NAME", help="sounddevice output device")
    eng.add_argument("--rate", type=int, metavar="HZ", help="sample rate, 8000 to 384000 (default: the device's)")
    eng.add_argument("--block", type=int, metavar="FRAMES", help="block size in frames, 16 to 8192")
    eng.add_argument("--dry-channel", type=int, metavar="N", help="input channel of the dry signal, counting from 1")
    eng.add_argument("--target-channel", type=int, metavar="N", help="input channel of the target, counting from 1")
    eng.add_argument("--jack-dummy", action="store_true",
                     help="start a JACK dummy server (48 kHz unless --rate) for the app's lifetime and use it as "
                          "input and output (no sound hardware needed)")
    eng.add_argument("--target", metavar="FILE", help="reference mode: the target recording, played in a loop")
    eng.add_argument("--dry-file", metavar="FILE",
                     help="loop the dry signal from this file instead of the input (demos, no instrument needed)")
    eng.add_argument("--hop", type=float, metavar="S", help="analysis hop in seconds (default: the engine's)")
    eng.add_argument("--provider", choices=("auto", "cpu"), help="onnxruntime provider (default: auto)")
    eng.add_argument("--crossfade-ms", type=float, metavar="MS", help="A/B crossfade length")
    parser.add_argument("--report-first-frame", action="store_true", help=argparse.SUPPRESS)


def _check_args(args: argparse.Namespace) -> None:
    if args.model and not Path(args.model).is_file():
        raise FxmatchInputError(f"{args.model}: no such model file")
    for opt, v in (("target", args.target), ("dry-file", args.dry_file)):
        if v and not Path(v).is_file():
            raise FxmatchInputError(f"app: --{opt} {v}: no such file")
    if args.screenshot and Path(args.screenshot).exists() and not Path(args.screenshot).is_dir():
        raise FxmatchInputError(f"{args.screenshot}: exists and is not a folder")
    from realtime.config import MAX_FRAMES, MAX_RATE, MIN_FRAMES, MIN_RATE

    for name in ("dry_channel", "target_channel"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise FxmatchInputError(f"app: --{name.replace('_', '-')} counts from 1, got {v}")
    if args.rate is not None and not MIN_RATE <= args.rate <= MAX_RATE:
        raise FxmatchInputError(f"app: --rate must be {MIN_RATE} to {MAX_RATE} Hz, got {args.rate}")
    if args.block is not None and not MIN_FRAMES <= args.block <= MAX_FRAMES:
        raise FxmatchInputError(f"app: --block must be {MIN_FRAMES} to {MAX_FRAMES} frames, got {args.block}")
    for name in ("hop", "crossfade_ms", "fps", "screenshot_seconds"):
        positive("app", name.replace("_", "-"), getattr(args, name))


def engine_options(args: argparse.Namespace) -> dict:
    """EngineConfig fields that the set-up panel does not show."""
    out: dict = {}
    if args.hop is not None:
        out["hop_seconds"] = args.hop
    if args.provider is not None:
        out["providers"] = args.provider
    if args.crossfade_ms is not None:
        out["crossfade_ms"] = args.crossfade_ms
    if args.dry_file is not None:
        out["dry_file"] = str(Path(args.dry_file).resolve())
    return out


def _select_or_add(combo, value: int, text: str) -> None:
    """Select the item of `combo` whose data is `value`, added as `text` at the end when it has none."""
    i = combo.findData(value)
    if i < 0:
        combo.addItem(text, value)
        i = combo.count() - 1
    combo.setCurrentIndex(i)


def apply_args(panel, args: argparse.Namespace) -> None:
    """Put the command line's engine options into the set-up panel (they override the remembered ones)."""
    if args.mode:
        panel.set_mode(args.mode)
    for combo, dev in ((panel.input_device, args.input_device), (panel.output_device, args.output_device)):
        if dev is None:
            continue
        ok = panel.select_device_index(combo, dev) if isinstance(dev, int) else False
        if not ok and isinstance(dev, str):
            i = next((k for k in range(combo.count()) if dev.lower() in combo.itemText(k).lower()), -1)
            ok = i >= 0
            if ok:
                combo.setCurrentIndex(i)
        if not ok:
            raise FxmatchInputError(f"app: no audio device {dev!r} (see the list in the app or `python -m sounddevice`)")
    if args.rate:
        _select_or_add(panel.sample_rate, args.rate, f"{args.rate} Hz")
    if args.block:
        _select_or_add(panel.block, args.block, f"{args.block} frames")
    if args.dry_channel:
        panel.dry_channel.setValue(args.dry_channel)
    if args.target_channel:
        panel.target_channel.setValue(args.target_channel)
    if args.target:
        panel.target_file.setText(str(Path(args.target).resolve()))


def make_app():
    """The QApplication with the app's theme (created once per process)."""
    from PyQt6 import QtCore, QtGui, QtWidgets

    from gui import theme

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "fxmatch"])
    app.setApplicationName("fxmatch")
    app.setStyle("Fusion")
    app.setStyleSheet(theme.STYLE_SHEET)
    font = QtGui.QFont("DejaVu Sans", 10)
    app.setFont(font)
    theme.configure_pyqtgraph()
    QtCore.qInstallMessageHandler(_qt_message)
    return app


#: Qt messages that say nothing to a user (the offscreen platform's on every window shown)
_QUIET_QT = ("This plugin does not support propagateSizeHints()",)


def _qt_message(kind, context, message: str) -> None:
    """Qt's messages on stderr as usual, less the ones in _QUIET_QT."""
    if message not in _QUIET_QT:
        print(message, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import contextlib

    _check_args(args)
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    with contextlib.ExitStack() as stack:
        if args.jack_dummy:
            from realtime.jack import JackDummyServer

            server = stack.enter_context(JackDummyServer(rate=args.rate or 48000, period=args.block or 256))
            args.input_device = server.device if args.input_device is None else args.input_device
            args.output_device = server.device if args.output_device is None else args.output_device
        return _run_app(args)


def _run_app(args: argparse.Namespace) -> int:
    """The window over `args` (a JACK dummy server, if asked for, already runs); the Qt event loop's exit code."""
    app = make_app()
    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from gui.widgets.setup_panel import absolute

    settings = AppSettings(args.settings, read_only=bool(args.screenshot))
    window = MainWindow(settings, model_path=absolute(args.model) or None, engine_options=engine_options(args),
                        fps=args.fps, in_process=args.in_process)
    try:
        apply_args(window.setup, args)
    except FxmatchInputError:
        window.close()
        window.deleteLater()
        raise
    if args.screenshot:
        return screenshot(window, Path(args.screenshot), args.screenshot_seconds)
    window.show()
    if args.report_first_frame:
        from PyQt6 import QtCore

        def report() -> None:
            if window.first_frame_at is None:
                QtCore.QTimer.singleShot(5, report)
                return
            print(json.dumps({"first_frame_unix_s": time.time() - (time.perf_counter() - window.first_frame_at)}),
                  flush=True)
            window.close()

        QtCore.QTimer.singleShot(0, report)
    if args.start:
        from PyQt6 import QtCore

        QtCore.QTimer.singleShot(0, window.start_engine)
    return int(app.exec())


def _pump(seconds: float) -> None:
    """Run the Qt event loop for `seconds`."""
    from PyQt6 import QtCore, QtWidgets

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(max(0, int(seconds * 1000)), loop.quit)
    loop.exec()
    QtWidgets.QApplication.processEvents()


def _save(window, path: Path) -> str:
    window.grab().save(str(path), "PNG")
    log.info("wrote %s", path)
    return str(path)


def screenshot(window, folder: Path, seconds: float) -> int:
    """Render idle, running (or start-error) and frozen-with-edit states into PNGs in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    window.resize(1440, 900)
    window.show()
    _pump(0.4)
    written = [_save(window, folder / "idle.png")]
    if window.start_engine():
        _pump(seconds)
        written.append(_save(window, folder / "running.png"))
        cards = window.chain_view.cards
        knobs = [k for c in cards for k in c.knobs.values()]
        if knobs:
            knob = knobs[0]
            knob._edit_norm(min(1.0, knob.shown_norm() + 0.25))
        window.set_frozen(True)
        _pump(1.0)
        written.append(_save(window, folder / "frozen.png"))
    else:
        written.append(_save(window, folder / "start-error.png"))
    window.close()
    window.deleteLater()
    _pump(0.05)
    for w in written:
        print(w)
    return 0
