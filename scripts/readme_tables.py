#!/usr/bin/env python3
"""Write the benchmark tables the README links to from benchmark JSON files (benchmarks/results/*.json).

    .venv/bin/fxmatch bench effects -o benchmarks/results/effects.json
    .venv/bin/python scripts/readme_tables.py

Each table sits between `<!-- BENCH-<NAME>:START -->` and `<!-- BENCH-<NAME>:END -->` in docs/twins.md or
docs/training.md; a missing JSON file leaves its block untouched. Each file is rewritten atomically, keeping its
file mode.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fxmatch.audio_io import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

AIMS_DB = {"Distortion": 40, "PeakFilter": 40, "Delay": 40, "Reverb": 40, "Compressor": 30, "Chorus": 20,
           "Phaser": 20, "LowpassFilter": 60, "HighpassFilter": 60, "Gain": 60}


def effects_table(r: dict) -> str:
    """Fidelity per effect and chain speed, from `fxmatch bench effects` JSON."""
    lines = [(f"Measured by `fxmatch bench effects` on {r['device']}, {r['fidelity_draws']} random parameter draws "
             f"per effect (median; p10 in brackets), {r['sample_rate']} Hz:"), "",
             "| effect | SNR twin vs pedalboard (dB) | aim (dB) | MR-STFT distance |", "|---|---|---|---|"]
    for name, snr in r["fidelity_snr_db"].items():
        p10 = r["fidelity_snr_db_p10"][name]
        lines.append(f"| {name} | {snr:.1f} ({p10:.1f}) | >= {AIMS_DB.get(name, '?')} | {r['mrstft'][name]:.4f} |")
    lines += ["", (f"Full 7-effect chain, batch {r['batch']} x {r['seconds']:g} s, forward + backward: "
              f"**{r['chain_fwd_bwd_s']:.2f} s** (forward only {r['chain_fwd_s']:.2f} s). Side by side in the same run: "
              f"a naive per-sample autograd loop of the same recursions takes {r['naive_fwd_bwd_s_extrapolated']:.0f} s "
              f"(extrapolated from {r['naive_slice_samples']} samples), **{r['naive_ratio']:.0f}x slower**; "
              f"pedalboard's own forward render takes {r['pedalboard_fwd_s']:.3f} s "
              f"(twins fwd+bwd = {r['pedalboard_ratio']:.0f}x pedalboard's forward)."), "",
              ("SNR is capped at 200 dB (bit-identical output). The MR-STFT distance of near-identical signals is "
              "dominated by its log-magnitude term on bins near the 1e-7 floor (e.g. Distortion's silent gaps), "
              "so read fidelity from the SNR.")]
    return "\n".join(lines)


def training_table(r: dict) -> str:
    """Step cost per training mode, from `fxmatch bench training` JSON."""
    lines = [(f"Measured by `fxmatch bench training` on {r['device']}: one optimiser step, batch {r['batch']} x "
             f"{r['clip_seconds']:g} s at {r['sample_rate']} Hz, {r['n_chains']} candidate chains, encoder of "
             f"{r['encoder_parameters'] / 1e6:.1f} M parameters:"), "",
             "| step | seconds | examples/s |", "|---|---|---|"]
    for name, s in r["steps"].items():
        lines.append(f"| {name} | {s['step_s']:.2f} | {s['examples_per_s']:.2f} |")
    lines += ["", (f"Top-{r['wta_candidates_per_example'] - 2} + 2 exploration candidates make a WTA step "
              f"**{r['naive_over_wta_step']:.1f}x cheaper** than rendering all {r['n_chains']} chains. "
              f"Data: {r['data_render_s_per_example'] * 1000:.0f} ms per example (synth + pedalboard).")]
    if "load_average" in r:
        low, high = sorted(r["load_average"])
        lines[-1] += (f" The machine's 1-minute load average was {low:.1f}-{high:.1f} during the run "
                      f"({'a --quick run, ' if r.get('quick') else ''}other jobs sharing its cores).")
    if "profile" in r:
        lines += ["", *profile_table(r)]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    """Seconds as milliseconds: one decimal below 10 ms, none above."""
    ms = seconds * 1000
    return f"{ms:.1f}" if abs(ms) < 10 else f"{ms:.0f}"


def profile_table(r: dict) -> list[str]:
    """Where a step's time goes, per mode and per twin, from the `profile` of `fxmatch bench training` JSON."""
    f = r["frontend"]
    lines = [("Where a step's time goes (`profile`; ms per step, one instrumented step per repeat; the front-end's "
             "input needs no gradient, so it has no backward; backward split at the moment the encoder's outputs "
             "get their gradient):"), "",
             ("| mode | data | front-end | encoder rest | twins fwd | loss fwd | other fwd | bwd loss + twins "
             "| bwd encoder | optimiser | step |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode, p in r["profile"].items():
        lines.append(f"| {mode} | {_ms(p['data_s'])} | {_ms(p['frontend_s'])} | {_ms(p['encoder_rest_s'])} | "
                     f"{_ms(p['twins_forward_s'])} | {_ms(p['loss_s'])} | {_ms(p['forward_other_s'])} | "
                     f"{_ms(p['backward_loss_and_twins_s'])} | {_ms(p['backward_encoder_s'])} | "
                     f"{_ms(p['optimizer_s'])} | {_ms(p['step_s'])} |")
    lines += ["", (f"Front-end on the same batch, side by side: `torch.stft` (trained) {_ms(f['stft_s'])} ms, the "
              f"exported conv1d DFT {_ms(f['conv_dft_s'])} ms: **{f['conv_dft_over_stft']:.1f}x** in favour of "
              "the FFT. Data (synth + pedalboard, per batch) runs in the trainer's DataLoader workers when "
              "`num_workers` > 0, beside the step rather than in it."), ""]
    modes = [m for m in ("wta", "naive", "full_chain") if r["profile"].get(m, {}).get("twins")]
    lines += [("Twins per effect (ms per step, forward in the step / backward replayed on the step's own calls; "
              "calls x examples):"), "",
              "| effect | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    names = sorted({n for m in modes for n in r["profile"][m]["twins"]})
    for name in names:
        cells = []
        for m in modes:
            t = r["profile"][m]["twins"].get(name)
            cells.append("-" if t is None else f"{_ms(t['forward_s'])} / {_ms(t['backward_s'])} "
                         f"({t['calls']} x {t['examples']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


RENDERERS = {"EFFECTS": ("effects.json", effects_table), "TRAINING": ("training.json", training_table)}


#: the documents whose benchmark blocks `main` rewrites by default (the README links to them)
DOCUMENTS = (ROOT / "docs" / "twins.md", ROOT / "docs" / "training.md")


def main(readme: Path | None = None) -> int:
    """Rewrite the benchmark blocks of `readme` (default: every file of DOCUMENTS) from RESULTS (0; a block or JSON
    file missing is skipped)."""
    for document in [readme] if readme is not None else DOCUMENTS:
        text = document.read_text()
        for name, (file, render) in RENDERERS.items():
            path = RESULTS / file
            pattern = re.compile(rf"(<!-- BENCH-{name}:START -->\n).*?(<!-- BENCH-{name}:END -->)", re.DOTALL)
            if not path.is_file() or not pattern.search(text):
                continue
            block = render(json.loads(path.read_text()))
            text = pattern.sub(lambda m, block=block: m.group(1) + block + "\n" + m.group(2), text)
        write_text_atomic(document, text)  # temp file + rename, keeping the file's mode
    return 0


if __name__ == "__main__":
    sys.exit(main())
