"""Outputs of `fxmatch evaluate` (see training.evaluate): the Markdown tables, the plots (chain confusion,
parameter error, reliability diagrams) and eval.json."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fxmatch.audio_io import atomic_write, write_text_atomic
from fxmatch.errors import FxmatchInputError
from training.eval_metrics import CALIBRATION_BINS, INAUDIBLE_SNR_DB, MEAN_PRESET


def _fmt(v: Any, digits: int = 3, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * v:.1f} %" if pct else f"{v:.{digits}f}"


def _times(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.2f}×"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The evaluation as Markdown: a summary table of every estimator, then per-effect tables of the models."""
    s = report["set"]
    lines = [(f"Evaluation on {s.get('spec')} ({s.get('kind')}, {s.get('n')} examples, {s.get('sample_rate')} Hz, "
             f"{_fmt(s.get('clip_seconds'), 2)} s clips, {s.get('n_chains_present')} distinct chains)."), "",
             ("| estimator | chain acc. | audible acc. | presence F1 (macro) | audible F1 | param MAE | MR-STFT "
              "| vs no effect | vs oracle | log-mel | log-mel vs no effect | effects named on unprocessed "
              "| worse than no estimate | median vs no effect |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label in report["order"]:
        r = report["estimators"][label]
        rel = r.get("relative", {})
        lines.append(
            f"| {label} | {_fmt(r['chain_accuracy'], pct=True)} "
            f"| {_fmt(r.get('audible', {}).get('chain_accuracy'), pct=True)} | {_fmt(r['presence']['macro_f1'])} "
            f"| {_fmt(r.get('audible', {}).get('macro_f1'))} "
            f"| {_fmt(r['param_mae']['mean'])} | {_fmt(r['mrstft']['mean'])} "
            f"| {_fmt(rel.get('mrstft_vs_no_effect'), pct=True)} | {_times(rel.get('mrstft_vs_oracle'))} "
            f"| {_fmt(r['logmel']['mean'])} | {_fmt(rel.get('logmel_vs_no_effect'), pct=True)} "
            f"| {_fmt(r.get('named_on_unprocessed'), 2)} | {_fmt(r.get('worse_than_no_estimate'), pct=True)} "
            f"| {_fmt(r.get('mrstft_vs_no_effect_median'), pct=True)} |")
    lines += ["", ("Distances are means over examples of pedalboard(estimated preset)(x) vs y; \"vs no effect\" is "
              "the ratio to the no-effect reference's mean (lower is better), \"vs oracle\" the ratio to the true "
              "preset through the twins. \"Effects named on unprocessed\": the mean number of effects named on the "
              "examples whose true chain is empty (— when there are none); \"worse than no estimate\": the share "
              "of examples whose render is farther from y than x itself; \"median vs no effect\": the median of "
              "that ratio over examples (y == x left out). Param MAE is normalised to [0, 1], on effects correctly present. "
              f"\"Audible\": a true effect whose removal changes y by less than {INAUDIBLE_SNR_DB:.0f} dB below y may be "
              "named or not.")]
    data = s.get("data") if isinstance(s.get("data"), Mapping) else {}
    if data.get("renderer") == "sox":
        lines += ["", ("This set's targets were rendered by SoX (training/foreign.py: the same effect names and "
                       "parameters, another implementation), so the oracle row (the true preset through the twins, "
                       "i.e. pedalboard) measures the mapping gap between SoX and pedalboard, not twin mismatch; "
                       "audibility is judged with SoX renders.")]
    lines += render_informed(report)
    lines += render_calibration(report)
    for label in report["order"]:
        r = report["estimators"][label]
        if r["role"] != "model":
            continue
        lines += ["", f"Per effect, {label}:", "",
                  "| effect | support | precision | recall | F1 | param MAE (n) | chain acc. without it |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for e, p in r["presence"]["per_effect"].items():
            m = r["param_mae"]["per_effect"].get(e)
            mae = f"{_fmt(m['mean'])} ({m['n_examples']})" if m else "—"
            lines.append(f"| {e} | {p['support']} | {_fmt(p['precision'])} | {_fmt(p['recall'])} | {_fmt(p['f1'])} "
                         f"| {mae} | {_fmt(p.get('chain_accuracy_without'), pct=True)} |")
        lines += ["", ("\"Chain acc. without it\": the exact chain accuracy with that effect struck from both the true "
                       "and the estimated chains, i.e. what naming it costs.")]
        lines += render_recall_by_removal(r.get("recall_by_removal"))
    return "\n".join(lines) + "\n"


def render_recall_by_removal(table: Mapping[str, Any] | None) -> list[str]:
    """Recall per effect against how much the true effect changes y (its removal's difference, dB below y)."""
    if not table:
        return []
    bins = table["bins"]
    lines = ["", "Recall by how much the true effect changes y (the chain without it vs y, dB below y; n in brackets):",
             "", "| effect | " + " | ".join(bins) + " |", "|---|" + "---:|" * len(bins)]
    for e, rows in table["per_effect"].items():
        cells = [f"{_fmt(row['recall'], 2)} ({row['n']})" if row["n"] else "—" for row in rows]
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return lines


def render_informed(report: Mapping[str, Any]) -> list[str]:
    """Markdown lines: each model blind (y alone) next to its informed path (the dry signal known), with the
    seconds per example; nothing when the evaluation ran without `dry_aware`."""
    rows = []
    for label in report["order"]:
        r = report["estimators"][label]
        if r["role"] not in ("model", "informed"):
            continue
        rel = r.get("relative", {})
        path = "informed (dry known)" if r["role"] == "informed" else "blind (target only)"
        rows.append(f"| {label} | {path} | {_fmt(r['chain_accuracy'], pct=True)} "
                    f"| {_fmt(r.get('audible', {}).get('chain_accuracy'), pct=True)} | {_fmt(r['param_mae']['mean'])} "
                    f"| {_fmt(rel.get('mrstft_vs_no_effect'), pct=True)} | {_fmt(r.get('seconds_per_example'), 2)} |")
    if not any(report["estimators"][label]["role"] == "informed" for label in report["order"]):
        return []
    return ["", ("Blind (the model hears the target alone) vs informed (the dry signal known: the model's likeliest "
                 "chains searched through the twins, `fxmatch estimate --dry`); seconds per example include the "
                 "encoder, the search and the pedalboard render of the result."), "",
            "| estimator | path | chain acc. | audible acc. | param MAE | MR-STFT vs no effect | s / example |",
            "|---|---|---:|---:|---:|---:|---:|", *rows]


def render_calibration(report: Mapping[str, Any]) -> list[str]:
    """Markdown lines: each model's ECE, mean top probability vs accuracy, and its chain temperature."""
    rows = []
    for label in report["order"]:
        r = report["estimators"][label]
        cal = r.get("calibration")
        if r["role"] != "model" or not cal:
            continue
        model = r.get("model") or {}
        temp = (f"T = {model['chain_temperature']:.3g}" if model.get("calibrated")
                else "not calibrated (no chain temperature)")
        rows.append(f"| {label} | {_fmt(cal['ece'])} | {_fmt(cal['mean_confidence'])} | {_fmt(cal['accuracy'])} "
                    f"| {temp} |")
    if not rows:
        return []
    return ["", (f"Calibration: does a top chain probability p come true about p of the time? ECE is the mean gap "
                 f"between confidence and exact-chain accuracy over {CALIBRATION_BINS} confidence bins (0 is "
                 "perfect); the reliability diagrams are reliability*.png."), "",
            "| model | ECE | mean top probability | chain accuracy | temperature |", "|---|---:|---:|---:|---|", *rows]


def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _short_chain(key: str) -> str:
    return key if key == "dry" else ">".join(part[:3] for part in key.split(">"))


def plot_confusion(conf: Mapping[str, Any], title: str, path: Path) -> None:
    """Row-normalised chain confusion matrix (rows true, columns estimated) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(conf["matrix"], dtype=np.float64)
    keep = np.flatnonzero((m.sum(axis=0) + m.sum(axis=1)) > 0)  # chains that occur (true or estimated)
    m = m[np.ix_(keep, keep)]
    labels = [_short_chain(conf["labels"][i]) for i in keep]
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = min(16.0, 3.0 + 0.22 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    font = max(4, min(9, int(200 / max(1, len(labels)))))
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(len(labels)), labels, fontsize=font)
    ax.set_xlabel("estimated chain")
    ax.set_ylabel("true chain")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true chain's examples")
    _save_figure(fig, path)


def plot_param_error(report: Mapping[str, Any], path: Path) -> None:
    """Per-effect normalised parameter MAE of the models and the mean preset, grouped bars, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, report["estimators"][label]) for label in report["order"]
            if report["estimators"][label]["role"] == "model" or label == MEAN_PRESET]
    effects = list(report["set"]["effects"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(effects) * max(1, len(rows)) ** 0.5 + 2), 4))
    width = 0.8 / max(1, len(rows))
    for i, (label, r) in enumerate(rows):
        values = [(r["param_mae"]["per_effect"].get(e) or {}).get("mean") for e in effects]
        xs = np.arange(len(effects)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(xs, [np.nan if v is None else v for v in values], width, label=label)
    ax.set_xticks(range(len(effects)), effects, rotation=20)
    ax.set_ylabel("parameter MAE (normalised)")
    ax.set_title("Parameter error on correctly present effects")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path)


def plot_reliability(cal: Mapping[str, Any], title: str, path: Path) -> None:
    """Reliability diagram as a PNG: accuracy per confidence bin against the diagonal, with the bin counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = cal["bins"]
    width = 1.0 / max(1, len(bins))
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.2, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    filled = [b for b in bins if b["count"]]
    ax.bar([b["lower"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
           color="tab:blue", edgecolor="white", label="accuracy in the bin")
    ax.bar([b["lower"] for b in filled], [b["confidence"] - b["accuracy"] for b in filled], width=width,
           bottom=[b["accuracy"] for b in filled], align="edge", color="tab:red", alpha=0.25, edgecolor="tab:red",
           label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("exact chain accuracy")
    ece = cal.get("ece")
    ax.set_title(f"{title}\nECE {ece:.3f}" if ece is not None else title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax_n.bar([b["lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge", color="0.5")
    ax_n.set_xlabel("top chain probability (confidence)")
    ax_n.set_ylabel("examples")
    _save_figure(fig, path)


def write_reliability(report: Mapping[str, Any], out: Path, models: Sequence[str]) -> dict[str, str]:
    """reliability.png for the first model, reliability-<label>.png for the others; {key: path}."""
    files = {}
    for i, label in enumerate(models):
        cal = report["estimators"][label].get("calibration")
        if not cal:
            continue
        name = "reliability.png" if i == 0 else f"reliability-{_slug(label)}.png"
        plot_reliability(cal, f"Reliability: {label}", out / name)
        files[f"reliability:{label}"] = str(out / name)
    return files


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def write_outputs(report: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """eval.json, eval.md, confusion.png (first model; confusion-<label>.png for the others), param_error.png."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FxmatchInputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    files = {"json": str(out / "eval.json"), "markdown": str(out / "eval.md")}
    models = [label for label in report["order"] if report["estimators"][label]["role"] == "model"]
    for i, label in enumerate(models):
        name = "confusion.png" if i == 0 else f"confusion-{_slug(label)}.png"
        plot_confusion(report["estimators"][label]["confusion"], f"Chain confusion: {label}", out / name)
        files[f"confusion:{label}"] = str(out / name)
    files.update(write_reliability(report, out, models))
    plot_param_error(report, out / "param_error.png")
    files["param_error"] = str(out / "param_error.png")
    report["files"] = files
    write_text_atomic(out / "eval.md", render_markdown(report))
    write_text_atomic(out / "eval.json", json.dumps(report, indent=1, allow_nan=False, default=_json_default))
    return files


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)
