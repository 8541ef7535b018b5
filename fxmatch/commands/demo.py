"""`fxmatch demo [--model M.onnx] [-o OUT_DIR] [--refine STEPS]`: the main job on the bundled examples.

For each example of `examples/examples.json` (a dry clip and its target, rendered by pedalboard through a known
chain): estimate the target's chain and params with the model (the shipped one by default), render the dry clip
through the estimated preset with pedalboard, and measure the multi-resolution STFT distance of that rendering to
the target (and, for reference, of the dry clip to the target: the "no effect" distance). Prints a table of true
vs estimated chains and params, how sure each estimate is (`inference.describe_confidence`; "no effect detected" is
an answer like any chain), and writes to OUT_DIR: one `<name>.fxpreset.json` per example, A/B WAV files
(`<name>_A_target.wav`, `<name>_B_estimate.wav`), `report.png` (spectrograms of target and estimate side by side,
chains with params) and `report.md`. Needs no GPU, no sound card and no display.

Each example is answered twice: blind (the model hears the target alone) and with the dry take, as `fxmatch
estimate TARGET --dry DRY` does (`commands.capture.capture_files`: the pair's params read off by identification,
the model's `--dry-k` likeliest chains fitted through the twins); both answers' chain and MR-STFT against no effect
are printed and reported, the second written as `<name>.with-dry.fxpreset.json` and `<name>_C_with_dry.wav`
(`--no-dry`: the blind answer only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fxmatch import audibility, shipped
from fxmatch.commands import estimate as estimate_cmd
from fxmatch.commands.checks import at_least
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import format_value

log = logging.getLogger("fxmatch.demo")

EXAMPLES_INDEX = shipped.EXAMPLES_INDEX
EXAMPLES_FORMAT = "fxmatch-examples"
DEFAULT_OUTPUT = "fxmatch-demo-output"
#: spectrogram of the report: FFT size and hop (samples at the file's rate), lowest frequency shown (Hz), and the
#: number of log-spaced frequency rows
SPEC_FFT, SPEC_HOP, SPEC_FMIN, SPEC_BINS = 2048, 256, 40.0, 256
#: the chains the answer with the dry take searches: the model's K likeliest and their sub-chains
DEFAULT_DRY_K = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help=f"exported ONNX model (default: the shipped "
                                         f"{shipped.describe(shipped.DEFAULT_MODEL)})")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="OUT_DIR",
                        help=f"folder for presets, A/B WAVs and the report (default: {DEFAULT_OUTPUT}/)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="refine each estimate with STEPS gradient steps through the twins on the dry clip")
    parser.add_argument("--examples", metavar="DIR",
                        help="folder holding examples.json and its audio (default: the bundled examples/)")
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"),
                        help="onnxruntime execution provider (default: auto = CUDA when it works, else CPU)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference and refine (default: all cores; "
                                                     "idle threads sleep, so a busy machine stays fast)")
    parser.add_argument("--dry-k", type=int, default=DEFAULT_DRY_K, metavar="K",
                        help=f"the answer with the dry take searches the model's K likeliest chains and their "
                             f"sub-chains (default {DEFAULT_DRY_K})")
    parser.add_argument("--no-dry", action="store_true", help="only the blind answer (faster)")


# ----------------------------------------------------------------------------------------------------------------
# the bundled examples


@dataclass
class Example:
    """One bundled example: name, dry and target files, and the true chain (a validated preset)."""

    name: str
    dry: Path
    target: Path
    true: Any  # fxmatch.preset.Preset
    instrument: str = ""


def load_examples(folder: str | os.PathLike | None = None) -> list[Example]:
    """Read and validate `examples.json` of `folder` (default: the bundled examples); FxmatchInputError if bad."""
    from fxmatch.preset import preset_from_dict

    root = Path(folder) if folder else shipped.default_examples()
    index = root / EXAMPLES_INDEX
    if not root.is_dir():
        raise FxmatchInputError(f"examples folder {root} is missing")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FxmatchInputError(f"{index}: missing (regenerate the examples with scripts/make_examples.py)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FxmatchInputError(f"{index}: not a readable examples index ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != EXAMPLES_FORMAT or not isinstance(
            data.get("examples"), list) or not data["examples"]:
        raise FxmatchInputError(f"{index}: not an {EXAMPLES_FORMAT!r} index with a non-empty 'examples' list")
    out = []
    for i, entry in enumerate(data["examples"]):
        where = f"{index}: examples[{i}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "dry", "target")):
            raise FxmatchInputError(f"{where}: needs string fields name, dry and target")
        true = preset_from_dict({"format": "fxmatch-preset", "version": 1, "chain": entry.get("chain")}, where)
        ex = Example(entry["name"], root / entry["dry"], root / entry["target"], true, str(entry.get("instrument", "")))
        for p in (ex.dry, ex.target):
            if not p.is_file():
                raise FxmatchInputError(f"{where}: audio file {p} is missing")
        out.append(ex)
    return out


# ----------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class ExampleResult:
    """What the demo found for one example (everything the table and the reports show)."""

    example: Example
    preset: Any  # fxmatch.preset.Preset, the estimate
    probability: float
    distance: float  # MR-STFT of dry-through-estimate vs target
    distance_dry: float  # MR-STFT of dry vs target ("no effect")
    seconds: float  # estimate (and refine) wall time
    target: np.ndarray = field(repr=False)  # [channels, samples]
    rendered: np.ndarray = field(repr=False)  # [channels, samples]
    sample_rate: int = 44100
    files: list[str] = field(default_factory=list)
    confidence: str = ""  # how sure, in words: "fairly sure (p = 0.82)", "unsure: alternatives are close ..."
    unsure: bool = False
    windows: str = ""  # "2 of 2" windows agreeing on the chain
    #: per true effect, how much removing it changes the target (dB below it; fxmatch.audibility.removal_db)
    removal_db: dict[str, float] = field(default_factory=dict)
    #: the answer with the dry take (capture through the twins; None with --no-dry), its MR-STFT to the target
    #: rendered by pedalboard, its wall time (s)
    with_dry: Any = None
    distance_with_dry: float | None = None
    seconds_with_dry: float = 0.0

    @property
    def with_dry_correct(self) -> bool:
        """The answer with the dry take names the true chain."""
        return self.with_dry is not None and self.with_dry.chain_names == self.example.true.effect_names

    @property
    def with_dry_audibly_correct(self) -> bool:
        """The answer with the dry take names every audible true effect and nothing outside the true chain."""
        return self.with_dry is not None and audibility.audibly_right(
            self.example.true.effect_names, audibility.audible(self.removal_db), self.with_dry.chain_names)

    @property
    def chain_correct(self) -> bool:
        return self.preset.chain_names == self.example.true.effect_names

    @property
    def inaudible(self) -> tuple[str, ...]:
        """True effects too subtle to count (fxmatch.audibility): naming them or not is both right."""
        heard = audibility.audible(self.removal_db)
        return tuple(name for name in self.removal_db if name not in heard)

    @property
    def audibly_correct(self) -> bool:
        """Every audible true effect named, nothing outside the true chain."""
        return audibility.audibly_right(self.example.true.effect_names, audibility.audible(self.removal_db),
                                        self.preset.chain_names)


def prepare_output(folder: str | os.PathLike) -> Path:
    """Create the output folder if needed and check that files can be written there (FxmatchInputError if not)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise FxmatchInputError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise FxmatchInputError(f"{out}: cannot write the demo output there ({exc.strerror or exc})") from None
    return out


def example_files(ex: Example, with_dry: bool = True) -> list[str]:
    """The names of the files the demo writes for one example: preset, A (target) and B (estimate) WAVs, and with
    the dry take's answer its preset and C WAV."""
    out = [f"{ex.name}.fxpreset.json", f"{ex.name}_A_target.wav", f"{ex.name}_B_estimate.wav"]
    return out + ([f"{ex.name}.with-dry.fxpreset.json", f"{ex.name}_C_with_dry.wav"] if with_dry else [])


def check_outputs(out: Path, examples: list[Example], inputs: list[Path], with_dry: bool = True) -> None:
    """Refuse (FxmatchInputError) before any work when a file the demo would write cannot be written or is one of
    its inputs (an example's audio, the examples index, the model)."""
    from fxmatch.audio_io import check_output

    sources = [*inputs, *(p for ex in examples for p in (ex.dry, ex.target))]
    for name in [*(f for ex in examples for f in example_files(ex, with_dry)), "report.png", "report.md"]:
        check_output(out / name, sources)


def mrstft(estimates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """fxmatch.metrics.mrstft_distance of each of `[n, channels, samples]` estimates to `[channels, samples]`
    target (trimmed to their common length): `[n]`."""
    import torch

    from fxmatch.metrics import mrstft_distance

    n = min(estimates.shape[-1], target.shape[-1])
    with torch.no_grad():
        e = torch.from_numpy(np.ascontiguousarray(estimates[..., :n], dtype=np.float32))
        t = torch.from_numpy(np.ascontiguousarray(target[..., :n], dtype=np.float32))
        return mrstft_distance(e, t[None].expand_as(e), reduce=False).numpy().astype(np.float64)


def run_example(session, ex: Example, out: Path, refine_steps: int = 0, dry_k: int | None = DEFAULT_DRY_K
                ) -> ExampleResult:
    """Estimate one example blind and (unless `dry_k` is None) with its dry take, write the presets and the A/B(/C)
    WAVs into `out`, and measure the distances."""
    from fxmatch.audio_io import read_audio, write_audio
    from fxmatch.inference import describe_confidence
    from fxmatch.preset import write_preset

    t0 = time.perf_counter()
    result = session.estimate_file(ex.target, top=None if dry_k else estimate_cmd.CONFIDENCE_ALTERNATIVES + 1)
    chain, refine_info = result.best.params, None
    if refine_steps:
        chain, refine_info = estimate_cmd.refine(result.best.chain, chain, str(ex.dry), str(ex.target),
                                                 refine_steps, seconds=4.0)
    seconds = time.perf_counter() - t0
    preset = estimate_cmd.preset_from_estimate(result, chain, refine_info)
    dry, rate = read_audio(ex.dry)
    target, target_rate = read_audio(ex.target)
    if rate != target_rate:
        raise FxmatchInputError(f"{ex.name}: dry ({rate} Hz) and target ({target_rate} Hz) differ in rate")
    rendered = preset.to_pedalboard(rate)(np.ascontiguousarray(dry), float(rate)).astype(np.float32)
    n = min(rendered.shape[-1], dry.shape[-1])
    distance, distance_dry = (float(d) for d in mrstft(np.stack([rendered[:, :n], dry[:, :n]]), target))
    true_chain = [(e.effect, e.params) for e in ex.true.chain]
    removal = audibility.removal_db(true_chain, dry, audibility.render_chain(true_chain, dry, rate), rate)
    preset.estimate["example"] = ex.name
    preset.estimate["mrstft_to_target"] = round(distance, 4)
    preset.estimate["mrstft_no_effect"] = round(distance_dry, 4)
    files = example_files(ex, bool(dry_k))
    write_preset(out / files[0], preset)
    write_audio(out / files[1], target, rate)
    write_audio(out / files[2], rendered, rate)
    conf = describe_confidence(result)
    res = ExampleResult(ex, preset, result.best.probability, distance, distance_dry, seconds, target, rendered,
                        rate, files, conf.text, conf.unsure, f"{result.n_agree} of {result.n_windows}", removal)
    if dry_k:
        search = estimate_cmd.search_with_dry(result, str(ex.dry), str(ex.target), dry_k)
        res.with_dry = estimate_cmd.preset_from_search(result, search)
        res.seconds_with_dry = search.seconds
        c = res.with_dry.to_pedalboard(rate)(np.ascontiguousarray(dry), float(rate)).astype(np.float32)
        m = min(c.shape[-1], n)
        res.distance_with_dry = float(mrstft(c[None, :, :m], target)[0])
        res.with_dry.estimate["example"] = ex.name
        res.with_dry.estimate["mrstft_to_target"] = round(res.distance_with_dry, 4)
        res.with_dry.estimate["mrstft_no_effect"] = round(distance_dry, 4)
        write_preset(out / files[3], res.with_dry)
        write_audio(out / files[4], c, rate)
    return res


def run(args: argparse.Namespace) -> int:
    from fxmatch.inference import EstimatorSession
    from fxmatch.threads import set_cpu_threads

    at_least("demo", "refine STEPS", args.refine, 0)
    at_least("demo", "threads", args.threads, 1)
    at_least("demo", "dry-k", args.dry_k, 1)
    dry_k = None if args.no_dry else args.dry_k
    t_start = time.perf_counter()
    examples = load_examples(args.examples)
    model = shipped.model_path(args.model)
    session = EstimatorSession(model, providers=args.provider, threads=args.threads)
    if args.refine or dry_k:
        set_cpu_threads(args.threads)
    out = prepare_output(args.output)
    index = (Path(args.examples) if args.examples else shipped.DEFAULT_EXAMPLES) / EXAMPLES_INDEX
    check_outputs(out, examples, [index, model], dry_k is not None)
    print(f"fxmatch demo: {len(examples)} examples, model {session.info.label} ({model.name}) on {session.provider}"
          + (f", refine {args.refine} steps" if args.refine else "")
          + (f"; each answered blind and with its dry take (the model's {dry_k} likeliest chains searched)"
             if dry_k else ""))
    results = []
    for i, ex in enumerate(examples, 1):
        r = run_example(session, ex, out, args.refine, dry_k)
        results.append(r)
        print()
        print(format_example(r, i, len(examples)))
    print()
    print(format_summary(results))
    if not session.info.calibrated:
        print(f"note: {session.info.label} is not calibrated (no chain temperature): its probabilities tend to run "
              "high")
    write_report_png(out / "report.png", results, session.info.label)
    write_text_report(out / "report.md", results, session.info.label, session.provider, args.refine)
    elapsed = time.perf_counter() - t_start
    print()
    print(f"wrote {len(results)} presets, {2 * len(results)} A/B WAVs (A = target, B = dry through the estimate), "
          f"report.png and report.md in {elapsed:.1f} s to:")
    print(f"  {out.resolve()}")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# text output


def _fmt(v: float | None) -> str:
    return "-" if v is None else format_value(v)


def _removal_words(db: float) -> str:
    """What removing an effect does to the target, in words (`db`: the difference's level below the target)."""
    return ("removing it leaves the target unchanged" if db == float("inf") else
            f"removing it changes the target by only {db:.0f} dB below its level")


def _chain_label(preset) -> str:
    """The preset's effects and output level (fxmatch.chains.chain_label), as every command prints them."""
    return preset.label


def param_rows(true, estimate) -> list[tuple[str, str, float | None, float | None, str]]:
    """(effect, param, true value or None, estimated value or None, unit) for every effect of either chain,
    in the canonical order."""
    from fxmatch.effects import EFFECT_NAMES, get_spec

    t = {e.effect: e.params for e in true.chain}
    e = {x.effect: x.params for x in estimate.chain}
    rows = []
    for name in sorted(set(t) | set(e), key=lambda n: EFFECT_NAMES.index(n) if n in EFFECT_NAMES else 99):
        spec = get_spec(name)
        for p in spec.params:
            rows.append((name, p.name, t.get(name, {}).get(p.name), e.get(name, {}).get(p.name), p.unit))
    return rows


def format_example(r: ExampleResult, i: int, n: int) -> str:
    """The block of one example: true and estimated chains, probability, distances, params side by side."""
    ex = r.example
    mark = ("correct chain" if r.chain_correct else
            "chain differs; audibly right" if r.audibly_correct else "chain differs")
    estimated = _chain_label(r.preset) if r.preset.chain else "no effect detected"
    lines = [
        f"[{i}/{n}] {ex.name}" + (f" ({ex.instrument})" if ex.instrument else ""),
        f"  true       {_chain_label(ex.true)}",
        f"  estimated  {estimated}   ({mark})",
        f"  how sure   {r.confidence or f'p = {r.probability:.2f}'}"
        + (f"; windows agreeing: {r.windows}" if r.windows else ""),
        f"  MR-STFT to target: estimate {r.distance:.3f}, no effect {r.distance_dry:.3f}",
    ]
    if r.with_dry is not None:
        mark_dry = ("correct chain" if r.with_dry_correct else
                    "chain differs; audibly right" if r.with_dry_audibly_correct else "chain differs")
        lines += [(f"  with dry   {r.with_dry.label}   ({mark_dry}; the dry take searched through the twins in "
                   f"{r.seconds_with_dry:.0f} s)"),
                  (f"  MR-STFT to target with dry: {r.distance_with_dry:.3f} = "
                   f"{100 * r.distance_with_dry / max(r.distance_dry, 1e-12):.1f} % of no effect")]
    for name in r.inaudible:
        lines.insert(2, f"             ({name} is inaudible here: {_removal_words(r.removal_db[name])}; naming it or "
                        "not is right)")
    refine = (r.preset.estimate or {}).get("refine")
    if refine:
        lines.append(f"  refine     {refine['steps']} steps: twin distance {refine['distance_before']:.4f} -> "
                     f"{refine['distance_after']:.4f} (kept the {refine['kept']} params)")
    rows = param_rows(ex.true, r.preset)
    if rows:
        w = max(len(p) for _, p, *_ in rows)
        lines.append(f"  {'effect':<11} {'param':<{w}}  {'true':>8}  {'estimate':>8}")
        last = None
        for effect, p, tv, ev, unit in rows:
            head = effect if effect != last else ""
            last = effect
            lines.append(f"  {head:<11} {p:<{w}}  {_fmt(tv):>8}  {_fmt(ev):>8} {unit}".rstrip())
    return "\n".join(lines)


def format_summary(results: list[ExampleResult]) -> str:
    """One line per example: true chain, estimated chain, probability, MR-STFT of the estimate and of no effect, and
    the answer with the dry take with its MR-STFT; then the counts."""
    wn = max(len("example"), *(len(r.example.name) for r in results))
    wt = max(len("true chain"), *(len(_chain_label(r.example.true)) for r in results))
    we = max(len("estimated chain"), *(len(_chain_label(r.preset)) for r in results))
    dried = [r for r in results if r.with_dry is not None]
    wd = max(len("with the dry take"), *(len(r.with_dry.label) for r in dried)) if dried else 0
    lines = [(f"{'example':<{wn}}  {'true chain':<{wt}}  {'estimated chain':<{we}}  {'prob':>5}  "
             f"{'MR-STFT':>7}  {'no effect':>9}") + (f"  {'with the dry take':<{wd}}  {'MR-STFT':>7}" if dried else "")]
    lines.append("-" * len(lines[0]))
    for r in results:
        dry = "" if not dried else (f"  {'-':<{wd}}  {'-':>7}" if r.with_dry is None else
                                    f"  {r.with_dry.label:<{wd}}  {r.distance_with_dry:>7.3f}")
        lines.append(f"{r.example.name:<{wn}}  {_chain_label(r.example.true):<{wt}}  {_chain_label(r.preset):<{we}}  "
                     f"{r.probability:>5.2f}  {r.distance:>7.3f}  {r.distance_dry:>9.3f}{dry}"
                     + ("  unsure" if r.unsure else ""))
    correct = sum(r.chain_correct for r in results)
    audibly = sum(r.audibly_correct for r in results)
    closer = sum(r.distance < r.distance_dry for r in results)
    unsure = sum(r.unsure for r in results)
    lines.append(f"chain correct for {correct} of {len(results)}"
                 + (f" ({audibly} of {len(results)} audibly: an effect whose removal changes the target by less than "
                    f"{audibility.INAUDIBLE_DB:.0f} dB below it may be named or not)"
                    if any(r.inaudible for r in results) else "")
                 + "; the estimate is closer to the target than no "
                 f"effect for {closer} of {len(results)} (MR-STFT, lower is closer)"
                 + (f"; {unsure} of {len(results)} estimates are unsure (listen before using them)" if unsure else ""))
    if dried:
        lines.append(f"with the dry take: chain correct for {sum(r.with_dry_correct for r in dried)} of {len(dried)}"
                     + (f" ({sum(r.with_dry_audibly_correct for r in dried)} of {len(dried)} audibly)"
                        if any(r.inaudible for r in dried) else "")
                     + "; closer to the target than no effect for "
                     f"{sum(r.distance_with_dry < r.distance_dry for r in dried)} of {len(dried)}")
    return "\n".join(lines)


def _chain_lines(preset) -> list[str]:
    """A chain with its params, one line per effect (for the report image)."""
    return [f"{e.effect}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in e.params.items()) for e in preset.chain]


def write_text_report(path: Path, results: list[ExampleResult], model: str, provider: str, refine: int) -> None:
    """report.md: summary table, then per example the params side by side and links to the files."""
    from fxmatch.audio_io import write_text_atomic

    lines = [
        "# fxmatch demo report", "",
        f"Model `{model}` on {provider}" + (f", refined with {refine} twin steps" if refine else "") + ". "
        "MR-STFT: multi-resolution STFT distance to the target (lower is closer) of the dry clip rendered through "
        "the estimate (pedalboard), and of the dry clip itself (no effect).", "",
        "![spectrograms of target and estimate](report.png)", "",
        ("| example | true chain | estimated chain | how sure | MR-STFT estimate | MR-STFT no effect "
         "| with the dry take | MR-STFT with dry |"),
        "|---|---|---|---|---:|---:|---|---:|",
    ]
    for r in results:
        dry_cols = ("- | -" if r.with_dry is None else f"{r.with_dry.label} | {r.distance_with_dry:.3f}")
        lines.append(f"| {r.example.name} | {_chain_label(r.example.true)} | {_chain_label(r.preset)} | "
                     f"{r.confidence or f'p = {r.probability:.3f}'} | {r.distance:.3f} | {r.distance_dry:.3f} | "
                     f"{dry_cols} |")
    for r in results:
        lines += ["", f"## {r.example.name}", "",
                  (f"A: [{r.files[1]}]({r.files[1]}), B: [{r.files[2]}]({r.files[2]}), "
                   f"preset: [{r.files[0]}]({r.files[0]})"), ""]
        rows = param_rows(r.example.true, r.preset)
        if rows:
            lines += ["| effect | param | true | estimate | unit |", "|---|---|---:|---:|---|"]
            lines += [f"| {e} | {p} | {_fmt(t)} | {_fmt(v)} | {u} |" for e, p, t, v, u in rows]
        else:
            lines.append("No effect, none estimated.")
    write_text_atomic(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# the report image


def spectrogram_db(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-frequency spectrogram of mono-mixed `[channels, samples]`: (level dB `[SPEC_BINS, frames]` on
    `SPEC_BINS` log-spaced frequencies from SPEC_FMIN to Nyquist, frame times in s `[frames]`)."""
    mono = np.asarray(x, dtype=np.float64).mean(axis=0)
    if mono.size < SPEC_FFT:
        mono = np.pad(mono, (0, SPEC_FFT - mono.size))
    frames = 1 + (mono.size - SPEC_FFT) // SPEC_HOP
    idx = np.arange(SPEC_FFT)[None, :] + SPEC_HOP * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(mono[idx] * np.hanning(SPEC_FFT), axis=1))  # [frames, SPEC_FFT // 2 + 1]
    db = 20 * np.log10(np.maximum(spec / (SPEC_FFT / 4), 1e-6))
    linear = np.fft.rfftfreq(SPEC_FFT, 1 / rate)
    log_f = np.geomspace(SPEC_FMIN, rate / 2, SPEC_BINS)
    out = np.stack([np.interp(log_f, linear, frame) for frame in db], axis=1)
    return out, (np.arange(frames) * SPEC_HOP + SPEC_FFT / 2) / rate


def write_report_png(path: Path, results: list[ExampleResult], model: str) -> None:
    """report.png: per example, spectrograms of target and estimate side by side and both chains with params."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from fxmatch.audio_io import atomic_write

    n = len(results)
    fig = Figure(figsize=(15, 2.9 * n + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"fxmatch demo: target (A) vs dry through the estimate (B), model {model}", fontsize=12)
    axes = fig.subplots(n, 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 1.15]})
    image = None
    for row, r in zip(axes, results):
        for ax, audio, title in ((row[0], r.target, "A: target"), (row[1], r.rendered, "B: estimate")):
            db, times = spectrogram_db(audio, r.sample_rate)
            nyquist = r.sample_rate / 2
            image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=0,
                              extent=(0.0, float(times[-1]) if times.size else 0.0, 0.0, 1.0),
                              interpolation="nearest")
            ticks = [f for f in (100, 300, 1000, 3000, 10000) if SPEC_FMIN <= f <= nyquist]
            ax.set_yticks([np.log(f / SPEC_FMIN) / np.log(nyquist / SPEC_FMIN) for f in ticks],
                          [f"{f / 1000:g}k" if f >= 1000 else str(f) for f in ticks])
            ax.set_title(f"{r.example.name} - {title}", fontsize=9)
            ax.set_ylabel("Hz", fontsize=8)
            ax.tick_params(labelsize=7)
        row[1].set_xlabel("s", fontsize=8)
        row[2].axis("off")
        text = "\n".join([f"true: {_chain_label(r.example.true)}", *_chain_lines(r.example.true), "",
                          f"estimate ({r.confidence or f'p = {r.probability:.2f}'}): {_chain_label(r.preset)}",
                          *_chain_lines(r.preset),
                          "", f"MR-STFT to target: estimate {r.distance:.3f}, no effect {r.distance_dry:.3f}"])
        row[2].text(0.0, 1.0, _wrap(text, 70), va="top", ha="left", fontsize=8, family="monospace",
                    transform=row[2].transAxes)
    if image is not None:
        fig.colorbar(image, ax=axes[:, :2], shrink=0.3, aspect=30, label="dB")

    def _save(tmp: str) -> None:
        fig.savefig(tmp, format="png", dpi=80)

    atomic_write(path, _save)


def _wrap(text: str, width: int) -> str:
    """Wrap each line of `text` at `width` characters (continuation lines indented)."""
    import textwrap

    out = []
    for line in text.splitlines():
        out.extend(textwrap.wrap(line, width, subsequent_indent="    ") or [""])
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    from fxmatch.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))

