"""Naive per-sample autograd loops of the same recursions as the twins: the speed baseline of `bench effects`.

Each function processes `x` `[batch, samples]` one sample at a time with torch ops on `[batch]` tensors, so
autograd records a graph node per sample and operation. Only used on a short slice and extrapolated.
"""

from __future__ import annotations

import math

import torch


def compressor(x, threshold_db, ratio, attack_ms, release_ms, sr):
    at = torch.exp(-2 * math.pi * 1000.0 / (attack_ms * sr))
    rt = torch.exp(-2 * math.pi * 1000.0 / (release_ms * sr))
    thr = 10 ** (threshold_db / 20)
    env = torch.zeros_like(x[:, 0])
    out = []
    for n in range(x.shape[1]):
        level = x[:, n].abs()
        cte = torch.where(level > env, at, rt)
        env = level + cte * (env - level)
        gain = torch.where(env < thr, torch.ones_like(env), (env / thr).clamp_min(1e-9) ** (1 / ratio - 1))
        out.append(gain * x[:, n])
    return torch.stack(out, 1)


def distortion(x, drive_db):
    return torch.tanh(x * 10 ** (drive_db[:, None] / 20))


def peak_filter(x, cutoff_hz, gain_db, q, sr):
    a = 10 ** (gain_db / 40)
    w = 2 * math.pi * cutoff_hz / sr
    alpha = torch.sin(w) / (2 * q)
    b0, b1, b2 = 1 + alpha * a, -2 * torch.cos(w), 1 - alpha * a
    a0, a1, a2 = 1 + alpha / a, -2 * torch.cos(w), 1 - alpha / a
    s1 = s2 = torch.zeros_like(x[:, 0])
    out = []
    for n in range(x.shape[1]):
        xn = x[:, n]
        y = (b0 * xn + s1) / a0
        s1 = (b1 * xn - a1 * y) / a0 + s2
        s2 = (b2 * xn - a2 * y) / a0
        out.append(y)
    return torch.stack(out, 1)


def _modulated_delay_loop(x, delay_samples, feedback, sign):
    """w[n] = x[n] + sign*feedback*y[n-1]; y[n] = w[n - d[n]] (linear interpolation), per sample."""
    hist: list[torch.Tensor] = []
    last = torch.zeros_like(x[:, 0])
    out = []
    zero = torch.zeros_like(last)
    for n in range(x.shape[1]):
        hist.append(x[:, n] + sign * feedback * last)
        d = delay_samples[:, n]
        i = torch.floor(d)
        frac = d - i
        k = int(i[0].item())
        a = hist[n - k] if n - k >= 0 else zero
        b = hist[n - k - 1] if n - k - 1 >= 0 else zero
        y = a * (1 - frac) + b * frac
        last = y
        out.append(y)
    return torch.stack(out, 1)


def chorus(x, rate_hz, depth, centre_delay_ms, feedback, mix, sr):
    t = torch.arange(x.shape[1], dtype=x.dtype) / sr
    lfo = torch.sin(2 * math.pi * rate_hz[:, None] * t)
    d_ms = torch.clamp(20 * depth[:, None] * 0.5 * lfo + centre_delay_ms[:, None], min=1.0)
    wet = _modulated_delay_loop(x, d_ms * sr / 1000, feedback, -1.0)
    return (1 - mix[:, None]) * x + mix[:, None] * wet


def phaser(x, rate_hz, depth, centre_hz, feedback, mix, sr):
    t = torch.arange(x.shape[1], dtype=x.dtype) / sr
    lfo = torch.sin(2 * math.pi * rate_hz[:, None] * t)
    lo, hi = math.log10(20.0), math.log10(min(20000.0, 0.49 * sr))
    norm_c = (torch.log10(centre_hz) - lo) / (hi - lo)
    fc = 10 ** (lo + (lfo * depth[:, None] * 0.5 + norm_c[:, None]).clamp(0, 1) * (hi - lo))
    g = torch.tan(math.pi * fc / sr)
    big_g = g / (1 + g)
    states = [torch.zeros_like(x[:, 0]) for _ in range(6)]
    last = torch.zeros_like(x[:, 0])
    out = []
    for n in range(x.shape[1]):
        u = x[:, n] + feedback * last
        gn = big_g[:, n]
        for k in range(6):
            v = (u - states[k]) * gn
            lp = v + states[k]
            states[k] = lp + v
            u = 2 * lp - u
        last = u
        out.append(u)
    wet = torch.stack(out, 1)
    return (1 - mix[:, None]) * x + mix[:, None] * wet


def delay(x, delay_seconds, feedback, mix, sr):
    d = int(delay_seconds[0].item() * sr)
    buf: list[torch.Tensor] = []
    zero = torch.zeros_like(x[:, 0])
    out = []
    for n in range(x.shape[1]):
        delayed = buf[n - d] if n - d >= 0 else zero
        buf.append(x[:, n] + delayed * feedback)
        out.append(x[:, n] * (1 - mix) + delayed * mix)
    return torch.stack(out, 1)


_COMBS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
_ALLPASSES = (556, 441, 341, 225)


def reverb(x, room_size, damping, wet_level, dry_level, sr):
    fb = room_size * 0.28 + 0.7
    d1 = damping * 0.4
    d2 = 1 - d1
    scale = sr / 44100
    combs = [int(c * scale) for c in _COMBS]
    aps = [int(a * scale) for a in _ALLPASSES]
    zero = torch.zeros_like(x[:, 0])
    comb_buf = [[] for _ in combs]
    comb_last = [zero for _ in combs]
    ap_buf = [[] for _ in aps]
    out = []
    for n in range(x.shape[1]):
        inp = x[:, n] * 0.015
        acc = zero
        for k, m in enumerate(combs):
            o = comb_buf[k][n - m] if n - m >= 0 else zero
            comb_last[k] = o * d2 + comb_last[k] * d1
            comb_buf[k].append(inp + comb_last[k] * fb)
            acc = acc + o
        for k, m in enumerate(aps):
            b = ap_buf[k][n - m] if n - m >= 0 else zero
            ap_buf[k].append(acc + b * 0.5)
            acc = b - acc
        out.append(acc * wet_level * 3 + x[:, n] * dry_level * 2)
    return torch.stack(out, 1)


def full_chain(x: torch.Tensor, p: dict[str, torch.Tensor], sr: float) -> torch.Tensor:
    """All seven recursions in canonical order, per sample; `p` maps 'Effect.param' to `[batch]` tensors."""
    x = compressor(x, p["Compressor.threshold_db"], p["Compressor.ratio"], p["Compressor.attack_ms"],
                   p["Compressor.release_ms"], sr)
    x = distortion(x, p["Distortion.drive_db"])
    x = peak_filter(x, p["PeakFilter.cutoff_frequency_hz"], p["PeakFilter.gain_db"], p["PeakFilter.q"], sr)
    x = chorus(x, p["Chorus.rate_hz"], p["Chorus.depth"], p["Chorus.centre_delay_ms"], p["Chorus.feedback"],
               p["Chorus.mix"], sr)
    x = phaser(x, p["Phaser.rate_hz"], p["Phaser.depth"], p["Phaser.centre_frequency_hz"], p["Phaser.feedback"],
               p["Phaser.mix"], sr)
    x = delay(x, p["Delay.delay_seconds"], p["Delay.feedback"], p["Delay.mix"], sr)
    return reverb(x, p["Reverb.room_size"], p["Reverb.damping"], p["Reverb.wet_level"], p["Reverb.dry_level"], sr)
