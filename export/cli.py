"""`fxmatch export CKPT OUT.onnx`: a training checkpoint -> a checked, self-describing ONNX model."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training checkpoint (.pt) written by `fxmatch train`")
    parser.add_argument("output", help="ONNX file to write (written atomically, only if every check passes)")
    parser.add_argument("--name", help="model name stored in the metadata (default: the checkpoint's, "
                                       "else the output file's name)")
    parser.add_argument("--model-version", dest="model_version", help="model version stored in the metadata "
                                                                      "(default: the checkpoint's, else 1)")
    parser.add_argument("--window-seconds", type=float, help="analysis window (default: the training clip length "
                                                             "recorded in the checkpoint, else 2 s)")
    parser.add_argument("--hop-seconds", type=float, help="hop between analysis windows (default: half a window)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="parity limit, relative to each output's scale (default: 1e-4)")
    parser.add_argument("--json", action="store_true", help="print the export report as JSON")


def run(args: argparse.Namespace) -> int:
    from export.onnx_export import ParityError, export_checkpoint
    from fxmatch.cli import print_json

    try:
        report = export_checkpoint(args.checkpoint, args.output, name=args.name, version=args.model_version,
                                   window_seconds=args.window_seconds, hop_seconds=args.hop_seconds,
                                   opset=args.opset, rtol=args.tolerance)
    except ParityError as exc:
        print(f"fxmatch: export failed, nothing written: {exc}", file=sys.stderr)
        return 1
    meta, parity = report.metadata, report.parity
    if args.json:
        print_json({"path": str(report.path), "size_bytes": report.size_bytes, "model": meta["model"],
                    "sample_rate": meta["sample_rate"], "analysis_window": meta["analysis_window"],
                    "n_chains": len(meta["vocabulary"]["chains"]), "parity": parity})
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
    return 0
