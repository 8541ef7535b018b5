"""`fxmatch export CKPT OUT.onnx [--calibrate SET] [--force]`: a training checkpoint -> a checked, self-describing ONNX
model (with `--calibrate`, its chain probabilities temperature-scaled on held-out examples). OUT must end in .onnx, is
never the checkpoint, and replaces an existing file only when that is an ONNX model (or with `--force`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training checkpoint (.pt) written by `fxmatch train`")
    parser.add_argument("output", help="ONNX file to write, ending in .onnx (written atomically, only if every check "
                                       "passes)")
    parser.add_argument("--name", help="model name stored in the metadata (default: the checkpoint's, "
                                       "else the output file's name)")
    parser.add_argument("--model-version", dest="model_version", help="model version stored in the metadata "
                                                                      "(default: the checkpoint's, else 1)")
    parser.add_argument("--window-seconds", type=float, help="analysis window (default: the training clip length "
                                                             "recorded in the checkpoint, else 2 s)")
    parser.add_argument("--hop-seconds", type=float, help="hop between analysis windows (default: half a window)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 to 20 (default: 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="parity limit, relative to each output's scale, > 0 and <= 1 (default: 1e-4)")
    parser.add_argument("--calibrate", metavar="SET",
                        help="fit the chain temperature (calibrated probabilities) on SET: heldout[:N][@SEED] (N "
                             "examples of the checkpoint's held-out split, default 200; without @SEED the training "
                             "seed + 1, so `fxmatch evaluate heldout` examples stay unseen) or a data set folder "
                             "(default: not calibrated, T = 1)")
    parser.add_argument("--presence-threshold", type=float, metavar="T",
                        help="name every effect whose presence probability is at least T (0 < T < 1; stored in the "
                             "model, used by estimate, demo, live and the app; default: the likeliest chain)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUTPUT even when it exists and is not an ONNX model (never the checkpoint)")
    parser.add_argument("--json", action="store_true", help="print the export report as JSON")


#: an ONNX file starts with its ir_version field (protobuf field 1, varint: tag byte 0x08)
_ONNX_FIRST_BYTE = b"\x08"


def _is_onnx_model(path: str | os.PathLike) -> bool:
    """True when `path` parses as an ONNX model with a graph (an empty file counts: nothing to lose)."""
    import onnx
    from google.protobuf.message import DecodeError

    with open(path, "rb") as fh:
        head = fh.read(1)
    if not head:
        return True
    if head != _ONNX_FIRST_BYTE:  # a WAV, a zip checkpoint, a pickle: no need to parse it all
        return False
    try:
        model = onnx.load_model(os.fspath(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError):
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def check_output_path(checkpoint: str | os.PathLike, output: str | os.PathLike, force: bool = False) -> None:
    """FxmatchInputError (exit 2, before any work) for an OUTPUT that is the checkpoint (by file identity, links
    included), lacks the `.onnx` suffix, cannot be written, or is an existing file other than an ONNX model (unless
    `force`)."""
    from fxmatch.audio_io import check_output, output_target
    from fxmatch.errors import FxmatchInputError

    check_output(output, [checkpoint], hint="give a new .onnx file name")
    target, through = output_target(output)
    if through:  # a FIFO or device (/dev/null): nothing stored there to lose
        return
    if Path(output).suffix.lower() != ".onnx":
        raise FxmatchInputError(f"{output}: an ONNX model's name must end in .onnx")
    if target.exists() and not force and not _is_onnx_model(target):
        raise FxmatchInputError(f"{output}: exists and is not an ONNX model; refusing to replace it (pass --force "
                                "to replace it anyway)")


def run(args: argparse.Namespace) -> int:
    from export.onnx_export import ExportError, check_options, export_checkpoint
    from fxmatch.jsonout import print_json

    check_options(args.opset, args.tolerance, args.window_seconds, args.hop_seconds)
    check_output_path(args.checkpoint, args.output, force=args.force)
    try:
        report = export_checkpoint(args.checkpoint, args.output, name=args.name, version=args.model_version,
                                   window_seconds=args.window_seconds, hop_seconds=args.hop_seconds,
                                   opset=args.opset, rtol=args.tolerance, calibrate=args.calibrate,
                                   progress=bool(args.calibrate) and sys.stderr.isatty(),
                                   presence_threshold=args.presence_threshold)
    except ExportError as exc:
        print(f"fxmatch: export failed, nothing written: {exc}", file=sys.stderr)
        return 1
    meta, parity, cal = report.metadata, report.parity, report.calibration
    if args.json:
        print_json({"path": str(report.path), "size_bytes": report.size_bytes, "model": meta["model"],
                    "sample_rate": meta["sample_rate"], "analysis_window": meta["analysis_window"],
                    "n_chains": len(meta["vocabulary"]["chains"]), "parity": parity,
                    "chain_temperature": meta.get("chain_temperature"), "calibration": cal})
        return 0
    vocab, window = meta["vocabulary"], meta["analysis_window"]
    n_params = sum(len(e["params"]) for e in vocab["effects"])
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB): {meta['model']['name']} "
          f"v{meta['model']['version']}, {len(vocab['chains'])} chains, {n_params} params, "
          f"{meta['sample_rate']} Hz, window {window['seconds']:.2f} s (hop {window['hop_seconds']:.2f} s)")
    per_output = ", ".join(
        f"{name} {max(c[name]['max_abs'] for c in parity['cases'].values()):.2g}"
        for name in ("chain_logits", "params")
    )
    print(f"onnx checker: ok; onnxruntime vs PyTorch on {len(parity['cases'])} inputs: max abs diff {per_output} "
          f"(relative {parity['relative']:.2g}, limit {parity['limit_relative']:g})")
    if cal:
        print(f"calibrated on {cal['set']['spec']} ({cal['n_examples']} examples, {cal['n_windows']} windows): "
              f"chain temperature {cal['temperature']:.3g}; NLL {cal['nll_before']:.3f} -> {cal['nll_after']:.3f}, "
              f"ECE {cal['ece_before']:.3f} -> {cal['ece_after']:.3f}, mean top probability "
              f"{cal['mean_confidence_before']:.2f} -> {cal['mean_confidence_after']:.2f} "
              f"(chain accuracy {cal['accuracy']:.2f})")
    else:
        print("not calibrated (probabilities as the network gives them; see --calibrate)")
    return 0
