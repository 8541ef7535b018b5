"""Real-rig distortion pairs, held out: `python -m training.guitarix OUT [--folder DIR]`.

Clean real guitar and bass recordings (Debian's sonic-pi-samples, which no training run reads) played through
Guitarix's circuit models of real drive pedals (Debian's guitarix-lv2: a Boss DS-1, an MXR Distortion+, a Big Muff),
each rendered by `lv2apply` (lilv-utils), another program than pedalboard with its own
clipping, tone stage and level. Each pair is one performance: `dry/NAME.wav` (the clean clip) and `wet/NAME.wav`
(the pedal's output), both float WAV at 44.1 kHz; `pairs.json` lists the pedal, its control values and the plugin's
latency. What a user would do with them: `fxmatch capture dry/NAME.wav wet/NAME.wav` (Distortion should be named,
and the fit should come closer than no effect) and `fxmatch estimate wet/NAME.wav` (does the model hear a drive?).

The pedals' own tone controls sit at their middle (DS-1 TONE 0.5, Muff TONE 0.5; the MXR's is fixed), so each
pair also holds a real tone stage after the clipping: the case a vocabulary without a filter after Distortion
cannot match (issue 26). (Guitarix's JCM800 preamp is left out: under lv2apply it lacks the uri-map feature
and ignores its controls.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from fxmatch.audio_io import atomic_folder, rms_dbfs
from fxmatch.errors import FxmatchInputError
from fxmatch.refine import loudest_excerpt
from training.real_set import SAMPLE_RATE, SONIC_PI_SAMPLES
from training.sources import normalise_loudness, read_mono

_URI = "http://guitarix.sourceforge.net/plugins/"


@dataclass(frozen=True)
class Pedal:
    """A Guitarix LV2 pedal model: its plugin URI and its control values at three drive strengths."""

    name: str
    uri: str
    strengths: Mapping[str, Mapping[str, float]]


#: the pedals and their settings (control symbols as `lv2info URI` lists them; BYPASS 1 = the effect is on)
PEDALS: tuple[Pedal, ...] = (
    Pedal("BossDS1", _URI + "gx_bossds1_#_bossds1_", {
        "slight": {"DRIVE": 0.15, "TONE": 0.5, "LEVEL": -2.0, "BYPASS": 1.0},
        "medium": {"DRIVE": 0.5, "TONE": 0.5, "LEVEL": -2.0, "BYPASS": 1.0},
        "heavy": {"DRIVE": 0.95, "TONE": 0.5, "LEVEL": -2.0, "BYPASS": 1.0}}),
    Pedal("MXRDistortionPlus", _URI + "gx_mxrdist_#_mxrdist_", {
        "slight": {"DRIVE": 0.2, "VOLUME": 0.5},
        "medium": {"DRIVE": 0.6, "VOLUME": 0.5},
        "heavy": {"DRIVE": 1.0, "VOLUME": 0.5}}),
    Pedal("BigMuff", _URI + "gx_muff_#_muff_", {
        "medium": {"TONE": 0.5, "VOLUME": 0.5}}),
)

#: the clean recordings of real guitars and a bass (Sonic Pi's samples)
CLEAN_RECORDINGS = ("guit_em9", "guit_e_fifths", "guit_e_slide", "guit_harmonics", "bass_woodsy_c")
CLIP_SECONDS = 3.0
#: the dry clips' loudness, like a DI at a sensible level and the training clips
DRY_RMS_DBFS = -20.0


def lv2apply_available() -> bool:
    """True when `lv2apply` is on PATH and Guitarix's LV2 bundle is installed."""
    return shutil.which("lv2apply") is not None and Path("/usr/lib/lv2/gx_bossds1.lv2").is_dir()


def render_lv2(audio: np.ndarray, sample_rate: int, uri: str, controls: Mapping[str, float]) -> np.ndarray:
    """`audio` float `[samples]` through the LV2 plugin `uri` with `controls` (lv2apply), float32 `[samples]`."""
    if not lv2apply_available():
        raise FxmatchInputError("lv2apply or guitarix-lv2 is missing (scripts/install.sh installs lilv-utils and "
                                "guitarix-lv2)")
    with tempfile.TemporaryDirectory(prefix="fxmatch-lv2-") as tmp:
        src, dst = Path(tmp, "in.wav"), Path(tmp, "out.wav")
        sf.write(src, np.asarray(audio, np.float32), sample_rate, subtype="FLOAT")
        args = ["lv2apply", "-i", str(src), "-o", str(dst)]
        for symbol, value in controls.items():
            args += ["-c", symbol, repr(float(value))]
        done = subprocess.run(args + [uri], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not dst.is_file():
            raise FxmatchInputError(f"lv2apply failed on {uri}: {done.stderr.strip()[-200:]}")
        out, rate = sf.read(dst, dtype="float32", always_2d=True)
    if rate != sample_rate or out.shape[0] != len(audio):
        raise FxmatchInputError(f"lv2apply returned {out.shape[0]} samples at {rate} Hz for {len(audio)} at "
                                f"{sample_rate} Hz")
    return out[:, 0].copy()


def latency_samples(uri: str, controls: Mapping[str, float], sample_rate: int = SAMPLE_RATE) -> int:
    """The plugin's delay in samples: where a quiet impulse's response peaks."""
    impulse = np.zeros(sample_rate // 4, np.float32)
    impulse[1000] = 1e-3
    return int(np.argmax(np.abs(render_lv2(impulse, sample_rate, uri, controls)))) - 1000


def make_pairs(out: str | Path, folder: Path = SONIC_PI_SAMPLES,
               recordings: Sequence[str] = CLEAN_RECORDINGS) -> list[dict]:
    """Write every recording through every pedal setting under `out` (new or empty; renamed into place whole)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FxmatchInputError(f"{out}: exists and is not an empty folder")
    paths = [folder / f"{name}.flac" for name in recordings]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FxmatchInputError(f"{folder}: missing {', '.join(missing)} (install Debian's sonic-pi-samples)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out) as tmp:
        (tmp / "dry").mkdir()
        (tmp / "wet").mkdir()
        pairs = []
        length = round(CLIP_SECONDS * SAMPLE_RATE)
        for path in paths:
            audio = read_mono(path, SAMPLE_RATE)
            start = loudest_excerpt(audio, length, max(1, length // 10))
            dry = normalise_loudness(np.pad(audio[start : start + length], (0, max(0, start + length - audio.size))),
                                     DRY_RMS_DBFS)
            for pedal in PEDALS:
                for strength, controls in pedal.strengths.items():
                    wet = render_lv2(dry, SAMPLE_RATE, pedal.uri, controls)
                    name = f"{path.stem}-{pedal.name}-{strength}"
                    sf.write(tmp / "dry" / f"{name}.wav", dry.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
                    sf.write(tmp / "wet" / f"{name}.wav", wet, SAMPLE_RATE, subtype="FLOAT")
                    pairs.append({"name": name, "recording": path.name, "pedal": pedal.name, "uri": pedal.uri,
                                  "strength": strength, "controls": dict(controls),
                                  "latency_samples": latency_samples(pedal.uri, controls),
                                  "dry_rms_dbfs": round(rms_dbfs(dry), 2), "wet_rms_dbfs": round(rms_dbfs(wet), 2)})
        (tmp / "pairs.json").write_text(json.dumps({"sample_rate": SAMPLE_RATE, "pairs": pairs}, indent=1) + "\n")
    return pairs


def read_pairs(folder: str | Path) -> list[dict]:
    """The pairs of a folder written by `make_pairs`, each with `dry` and `wet` paths added."""
    folder = Path(folder)
    try:
        pairs = json.loads((folder / "pairs.json").read_text())["pairs"]
    except (OSError, ValueError, KeyError) as exc:
        raise FxmatchInputError(f"{folder}: not a real-distortion pair folder ({exc.__class__.__name__})") from None
    return [{**p, "dry": folder / "dry" / f"{p['name']}.wav", "wet": folder / "wet" / f"{p['name']}.wav"}
            for p in pairs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.guitarix", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (must not exist or be empty)")
    parser.add_argument("--folder", type=Path, default=SONIC_PI_SAMPLES, help="the sonic-pi-samples folder")
    args = parser.parse_args(argv)
    try:
        pairs = make_pairs(args.out, args.folder)
    except FxmatchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(pairs)} pairs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
