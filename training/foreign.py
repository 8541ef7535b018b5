"""A "foreign" renderer: the vocabulary's effects made by SoX instead of pedalboard (`renderer: sox`).

The twins copy pedalboard (JUCE) to >110 dB, so pedalboard-rendered sets cannot show how the model fares on effects
made by another implementation. `render_sox` renders a vocabulary chain (the same effect names and parameter values
as DESIGN.md) with SoX 14.4 effects, one `sox` pass per effect through pysox (`Transformer.build_array`), float32
in and out; configs/heldout-sox.yaml writes such a held-out set (`renderer: sox`, synth + MIDI dry clips). The
mapping is approximate by design: same labels, a different implementation. On such a set the evaluation's "oracle
(twins)" row (the true preset through the twins) measures the *mapping gap* (SoX vs pedalboard for the same
labels), not twin mismatch.

Mapping, per effect (pedalboard's parameter names and units; "clamped" where SoX refuses a value):

- Compressor -> `compand`: attack,decay = attack_ms / 1000, release_ms / 1000 s (SoX's integrator time constants;
  JUCE's are the times / 2 pi, so SoX's detector is ~6x slower for the same labels); transfer function
  `6:-120,-120,T,T,0,T*(1-1/R)` dB (6 dB soft knee, slope 1/ratio above threshold_db T, clamped to <= 0 dB as SoX
  refuses points above full scale); no make-up gain; initial level -120 dB (JUCE's envelope starts at 0); no
  look-ahead delay. The headroom scaling (below) only lowers its input, shifting these points by the same dB.
- Distortion -> `overdrive`: gain = drive_db dB (SoX: 0-100 dB, clamped), colour 20 (SoX's default: a bias that adds
  even harmonics), then an output gain from 0 dB at drive 5 dB rising linearly to OVERDRIVE_MAKEUP_DB = +5 dB at
  40 dB (applied here, in float): SoX's `0.5 x + 0.75 * dc_block(soft_clip(g x + 0.1))` matches tanh's level at low
  drive but saturates near 0.5 + 0.5 x instead of 1 (-5 dB at drive 40 on guitar-like tones without that gain,
  within ~1.5 dB with it; peaks may then exceed 1, as floats).
- PeakFilter -> `equalizer`: frequency = cutoff_frequency_hz (at most sample_rate / 2 - 100 Hz), width = q (as Q),
  gain = gain_db. The same RBJ peaking biquad as JUCE's: this effect alone has (almost) no mapping gap.
- Chorus -> `chorus` with triangle modulation: gain-in 1 - mix, gain-out 1; voice 1: delay = centre_delay_ms
  clamped to SoX's [20, 100] ms, decay = mix, speed = rate_hz clamped to [0.1, 5] Hz, depth = 10 * depth ms
  (pedalboard's delay swing) clamped to [0, 10] ms and below delay - 1 ms; feedback > 0 adds voice 2 at twice the
  delay (<= 100 ms) and swing (<= 10 ms) with decay mix * feedback (JUCE's feedback recursion, with alternating
  sign, approximated by one positive echo). SoX's sine modulation is not used: it sweeps 0..depth ms whatever the
  delay (a SoX quirk: the delay only sizes the buffer); the triangle sweeps delay +- depth.
- Phaser -> `phaser` (sine), mixed here: SoX's "phaser" is a feedback comb whose delay sweeps from 1 sample up to
  `delay`: delay = 500 * 10^(1.5 * depth) / centre_frequency_hz ms (the comb's lowest notch fs / (2 delay) at
  pedalboard's lowest all-pass cutoff, centre * 10^(-1.5 depth)), clamped to SoX's [0.1, 5] ms; decay = 0.5 + 0.6 *
  feedback (<= 0.95; at decay 0 SoX's comb vanishes, JUCE's all-passes do not); speed = rate_hz clamped to SoX's
  [0.1, 2] Hz; gain-in 1, gain-out sqrt((1 - decay) sqrt(1 - decay^2)) (between unit gain at DC, where the comb
  peaks, and unit power gain on white noise: within ~2 dB of pedalboard's level on tones and noise); output
  (1 - mix) x + mix * phaser(x).
- Delay -> `echo`: taps at k * delay_seconds (k = 1, 2, ...) with gains mix * feedback^(k-1) until below -60 dB or
  past the clip's end, gain-in 1 - mix; SoX takes at most 7 taps per `echo`, so longer tails run as further `echo`
  passes (gain-in 0) summed here. SoX truncates each tap's delay to whole samples, int(k * d * sr), where pedalboard
  repeats int(d * sr): with the -60 dB truncation, the only (small) gap.
- Reverb -> `reverb -w` (wet only), mixed here: reverberance = 100 * room_size %, HF-damping = 100 * damping %,
  room-scale 100 %, stereo-depth 0, pre-delay 0; output 2 * dry_level * x + 3 * wet_level * REVERB_WET_GAIN * wet
  (JUCE's dry/wet scale factors; REVERB_WET_GAIN = 1.05 matches pedalboard's wet RMS at room_size 0.5, damping 0.5
  on white noise; at the range's corners they differ by up to ~4 dB, pedalboard louder at room_size 0.95, damping 0).

Levels and timing: SoX's samples are 32-bit integers internally (clipped at full scale; chorus, phaser and echo keep
24 bits), so every effect but `overdrive` runs on the input scaled to a peak of HEADROOM_PEAK_DBFS and is scaled back
afterwards (`compand`'s input is only ever scaled down, its transfer function and initial level shifted by the
same dB, so it acts on the true levels); a
pass that still reaches full scale is run again with 20 dB more headroom. `overdrive` depends on the absolute level
and runs unscaled (an input above full scale, possible only with non-canonical orders, is clipped by SoX: a warning
is logged). No `-G`/guard, no `--norm`, no dither (pysox passes `-D`): SoX never rescales on its own. Every pass's
output is cut to the input's length (echo, chorus and phaser append their tails); none of these effects shifts the
direct signal (checked on impulses in tests/training/test_foreign.py).

pysox is used for the process and its float32 pipes (`build_array` with `extra_args`: the documented way to pass
an effect as SoX spells it) rather than its effect builders, which refuse values SoX accepts (`phaser` decay
> 0.5, `compand` attack > decay) and cannot set `compand`'s initial level.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary

log = logging.getLogger(__name__)
logging.getLogger("sox").setLevel(logging.WARNING)  # pysox logs every command line at INFO (fxmatch --verbose)

#: peak level (dBFS) the input of a scale-invariant SoX pass is brought to (SoX clips at 0 dBFS)
HEADROOM_PEAK_DBFS = -30.0
#: taps of a Delay are kept while their gain is at least this (-60 dB)
ECHO_FLOOR = 1e-3
#: SoX's `echo` takes at most this many taps
ECHO_MAX_TAPS = 7
#: scale of SoX's wet-only reverb to pedalboard's wet signal (RMS on white noise, room_size 0.5, damping 0.5)
REVERB_WET_GAIN = 1.05
#: SoX's accepted ranges that the mapping clamps to
CHORUS_DELAY_MS = (20.0, 100.0)
CHORUS_SPEED_HZ = (0.1, 5.0)
CHORUS_DEPTH_MS = (0.0, 10.0)
PHASER_DELAY_MS = (0.1, 5.0)
PHASER_SPEED_HZ = (0.1, 2.0)
PHASER_MAX_DECAY = 0.95
OVERDRIVE_GAIN_DB = (0.0, 100.0)
#: output gain after `overdrive` at drive_db 40 (0 dB at 5, linear in between): SoX saturates near 0.5 + 0.5 x
OVERDRIVE_MAKEUP_DB = 5.0

_FULL_SCALE = 0.999  # a SoX output at or above this magnitude may have been clipped


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def require_sox() -> None:
    """FxmatchInputError (one line) unless the `sox` binary and the pysox package are both installed."""
    if shutil.which("sox") is None:
        raise FxmatchInputError("renderer 'sox' needs the SoX command-line tool: apt-get install sox "
                                "(scripts/install.sh installs it)")
    try:
        import sox  # noqa: F401
    except ImportError:
        raise FxmatchInputError("renderer 'sox' needs the Python package sox (pysox): "
                                "pip install 'sox>=1.5' (the train extra)") from None


def run_sox(x: np.ndarray, args: Sequence[str], sample_rate: int) -> np.ndarray:
    """One SoX pass of effect `args` (as SoX spells them) over mono float32 `x`; output cut to `x`'s length."""
    import sox

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    tfm = sox.Transformer()
    try:
        y = tfm.build_array(input_array=x, sample_rate_in=int(sample_rate), extra_args=[str(a) for a in args])
    except sox.core.SoxError as exc:
        lines = [ln for ln in str(exc).splitlines() if "FAIL" in ln]
        raise FxmatchInputError(f"sox {' '.join(args)}: {lines[0] if lines else exc}") from None
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.size < x.size:
        raise RuntimeError(f"sox {' '.join(args)} returned {y.size} samples for {x.size}")
    return y[: x.size].copy()


def _scaled(x: np.ndarray, sample_rate: int, args_for: Callable[[float], list[str]],
            max_level_db: float = math.inf) -> np.ndarray:
    """Run a scale-invariant pass on `x` brought to HEADROOM_PEAK_DBFS (raised by at most `max_level_db`);
    `args_for(level_db)` gets the scale in dB."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return run_sox(x, args_for(0.0), sample_rate)
    target_db = HEADROOM_PEAK_DBFS
    for _ in range(4):
        level_db = min(target_db - 20.0 * math.log10(peak), max_level_db)
        gain = 10.0 ** (level_db / 20.0)
        y = run_sox(x * np.float32(gain), args_for(level_db), sample_rate)
        if float(np.max(np.abs(y))) < _FULL_SCALE:
            return (y.astype(np.float64) / gain).astype(np.float32)
        log.debug("sox %s reached full scale at %.0f dBFS input peak; 20 dB more headroom", args_for(0.0)[0],
                  target_db)
        target_db -= 20.0
    log.warning("sox %s clipped even at %.0f dBFS input peak", args_for(0.0)[0], target_db + 20.0)
    return (y.astype(np.float64) / gain).astype(np.float32)


def compressor(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Compressor -> `compand` (module docstring)."""
    threshold, ratio = min(float(p["threshold_db"]), 0.0), max(float(p["ratio"]), 1.0)
    attack, release = float(p["attack_ms"]) / 1000.0, float(p["release_ms"]) / 1000.0

    def args(level_db: float) -> list[str]:
        # the transfer function in SoX's levels: the input's dB plus level_db (<= 0: SoX refuses points above 0 dB)
        t = threshold + level_db
        out_top = t + (level_db - t) / ratio
        points = ",".join(_fmt(v) for v in (-120.0 + level_db, -120.0 + level_db, t, t, level_db, out_top))
        return ["compand", f"{_fmt(attack)},{_fmt(release)}", f"6:{points}", "0", _fmt(-120.0 + level_db), "0"]

    return _scaled(x, sample_rate, args, max_level_db=0.0)


def distortion(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Distortion -> `overdrive` at the true level (module docstring)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        log.warning("Distortion (sox overdrive): input peak %.2f above full scale is clipped by SoX", peak)
    drive = float(p["drive_db"])
    y = run_sox(x, ["overdrive", _fmt(_clamp(drive, OVERDRIVE_GAIN_DB)), "20"], sample_rate)
    return (y * np.float32(10.0 ** (overdrive_makeup_db(drive) / 20.0))).astype(np.float32)


def overdrive_makeup_db(drive_db: float) -> float:
    """Output gain (dB) after `overdrive`: 0 dB at drive 5 dB rising linearly to +5 dB at 40 dB (module docstring)."""
    return _clamp(OVERDRIVE_MAKEUP_DB * (drive_db - 5.0) / 35.0, (0.0, OVERDRIVE_MAKEUP_DB))


def peak_filter(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """PeakFilter -> `equalizer` (module docstring)."""
    freq = min(float(p["cutoff_frequency_hz"]), sample_rate / 2.0 - 100.0)
    args = ["equalizer", _fmt(freq), f"{_fmt(float(p['q']))}q", _fmt(float(p["gain_db"]))]
    return _scaled(x, sample_rate, lambda _: args)


def chorus_args(p: Mapping[str, float]) -> list[str]:
    """SoX `chorus` arguments for Chorus params (module docstring)."""
    mix = _clamp(float(p["mix"]), (0.0, 1.0))
    delay = _clamp(float(p["centre_delay_ms"]), CHORUS_DELAY_MS)
    speed = _clamp(float(p["rate_hz"]), CHORUS_SPEED_HZ)
    swing = _clamp(10.0 * float(p["depth"]), CHORUS_DEPTH_MS)
    swing = min(swing, delay - 1.0)
    args = ["chorus", _fmt(1.0 - mix), "1", _fmt(delay), _fmt(mix), _fmt(speed), _fmt(swing), "-t"]
    feedback = float(p.get("feedback", 0.0))
    if feedback > 0.0:
        delay2 = _clamp(2.0 * delay, CHORUS_DELAY_MS)
        swing2 = min(_clamp(2.0 * swing, CHORUS_DEPTH_MS), delay2 - 1.0)
        args += [_fmt(delay2), _fmt(min(mix * feedback, 1.0)), _fmt(speed), _fmt(swing2), "-t"]
    return args


def chorus(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Chorus -> `chorus` (module docstring)."""
    args = chorus_args(p)
    return _scaled(x, sample_rate, lambda _: args)


def phaser_args(p: Mapping[str, float]) -> tuple[list[str], float]:
    """SoX `phaser` arguments for Phaser params, and the wet proportion mixed outside SoX (module docstring)."""
    centre = max(float(p["centre_frequency_hz"]), 1.0)
    delay = _clamp(500.0 * 10.0 ** (1.5 * float(p["depth"])) / centre, PHASER_DELAY_MS)
    decay = _clamp(0.5 + 0.6 * float(p["feedback"]), (0.0, PHASER_MAX_DECAY))
    speed = _clamp(float(p["rate_hz"]), PHASER_SPEED_HZ)
    gain_out = math.sqrt((1.0 - decay) * math.sqrt(1.0 - decay * decay))
    return ["phaser", "1", _fmt(gain_out), _fmt(delay), _fmt(decay), _fmt(speed), "-s"], float(p["mix"])


def phaser(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Phaser -> `phaser`, mixed with the dry signal here (module docstring)."""
    args, mix = phaser_args(p)
    wet = _scaled(x, sample_rate, lambda _: args)
    return ((1.0 - mix) * x.astype(np.float64) + mix * wet).astype(np.float32)


def delay_taps(p: Mapping[str, float], sample_rate: int, n_samples: int) -> list[tuple[float, float]]:
    """(delay ms, gain) of each echo tap of Delay params within `n_samples` (module docstring)."""
    d, feedback, mix = float(p["delay_seconds"]), float(p["feedback"]), float(p["mix"])
    taps: list[tuple[float, float]] = []
    if d <= 0.0 or mix <= 0.0:
        return taps
    k, gain = 1, mix
    while gain >= ECHO_FLOOR and int(k * d * sample_rate) < n_samples:
        taps.append((1000.0 * k * d, gain))
        k, gain = k + 1, gain * feedback
    return taps


def delay(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Delay -> `echo` passes of at most ECHO_MAX_TAPS taps, summed (module docstring)."""
    mix = _clamp(float(p["mix"]), (0.0, 1.0))
    taps = delay_taps(p, sample_rate, x.size)
    if not taps:
        return ((1.0 - mix) * x.astype(np.float64)).astype(np.float32) if float(p["delay_seconds"]) > 0 else x.copy()
    out = np.zeros(x.size, dtype=np.float64)
    for start in range(0, len(taps), ECHO_MAX_TAPS):
        group = taps[start:start + ECHO_MAX_TAPS]
        args = ["echo", _fmt(1.0 - mix if start == 0 else 0.0), "1"]
        for ms, gain in group:
            args += [_fmt(ms), _fmt(gain)]
        out += _scaled(x, sample_rate, lambda _, a=args: a)
    return out.astype(np.float32)


def reverb_args(p: Mapping[str, float]) -> list[str]:
    """SoX wet-only `reverb` arguments for Reverb params (module docstring)."""
    return ["reverb", "-w", _fmt(100.0 * _clamp(float(p["room_size"]), (0.0, 1.0))),
            _fmt(100.0 * _clamp(float(p["damping"]), (0.0, 1.0))), "100", "0", "0", "0"]


def reverb(x: np.ndarray, p: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """Reverb -> `reverb -w`, wet and dry mixed here with JUCE's scale factors (module docstring)."""
    args = reverb_args(p)
    wet = _scaled(x, sample_rate, lambda _: args)
    dry_gain = 2.0 * float(p["dry_level"])
    wet_gain = 3.0 * float(p["wet_level"]) * REVERB_WET_GAIN
    return (dry_gain * x.astype(np.float64) + wet_gain * wet.astype(np.float64)).astype(np.float32)


#: effect name -> its SoX rendering `f(x, params, sample_rate)`
SOX_EFFECTS: dict[str, Callable[[np.ndarray, Mapping[str, float], int], np.ndarray]] = {
    "Compressor": compressor, "Distortion": distortion, "PeakFilter": peak_filter, "Chorus": chorus,
    "Phaser": phaser, "Delay": delay, "Reverb": reverb,
}


def render_sox(
    vocab: ChainVocabulary | None, names: Sequence[str], params: Sequence[Mapping[str, float]], x: np.ndarray,
    sample_rate: int,
) -> np.ndarray:
    """Render mono `x` `[samples]` through SoX's effects for chain `names`, params in pedalboard's units (one dict
    per effect), each effect after the previous one; float32 `[samples]`, the input's length. `vocab` (when given)
    must hold every effect of the chain."""
    out = np.array(x, dtype=np.float32, copy=True)
    if not names:
        return out
    require_sox()
    for name, p in zip(names, params, strict=True):
        if vocab is not None:
            vocab.effect(name)
        if name not in SOX_EFFECTS:
            raise FxmatchInputError(f"renderer 'sox': no SoX mapping for effect {name!r} "
                                    f"(mapped: {', '.join(SOX_EFFECTS)})")
        out = SOX_EFFECTS[name](out, p, int(sample_rate))
    return out


def render_sox_preset(preset: Sequence[tuple[str, Mapping[str, float]]], x: np.ndarray, sample_rate: int) -> np.ndarray:
    """`render_sox` of a preset `[(effect, params), ...]` (the evaluation's form; non-finite output -> 0)."""
    y = render_sox(None, [n for n, _ in preset], [p for _, p in preset], x, sample_rate)
    return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
