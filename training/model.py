"""The encoder f_θ: raw audio -> log-mel (inside the model, ONNX-exportable) -> CNN -> chain logits and params.

Every op exports to ONNX with dynamic batch and length: while exporting, the STFT is a strided `conv1d` with a
fixed Hann-windowed DFT basis (no `torch.stft`; the export computes the basis in the graph, so the file does not store
it: export/onnx_export.py); in training and PyTorch inference the same spectrogram comes from
`torch.stft` (about 9x cheaper on a CPU, equal to float tolerance: tests/training/test_model.py). The mel filterbank
is a matrix product with a buffer; time structure (echoes, modulation) is read by an optional stack of dilated 1-D
convolutions over frames before pooling over time (mean, max and standard deviation).

Chain scoring: "chain" gives one free logit per candidate chain; "presence" scores chain k from per-effect presence
logits l_e as sum_e [e in k] log σ(l_e) + [e not in k] log σ(-l_e), so a chain's probability is the product of
its effects' presence probabilities (renormalised over the candidates), and a win teaches every chain that shares
its effects.
Outputs follow DESIGN.md's model contract: `chain_logits` `[batch, n_chains]`, `params` `[batch, n_chains,
n_params]` in [0, 1] (the vocabulary's shared layout: effect e's values of candidate k in `params[:, k, slice_e]`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fxmatch.vocabulary import ChainVocabulary


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: `2595 log10(1 + f / 700)`."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _triangles(bins: np.ndarray, lower: np.ndarray, centre: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Triangles `[filters, bins]` rising from `lower` to 1 at `centre` and falling to 0 at `upper` (Hz, `[filters, 1]`)."""
    return np.clip(np.minimum((bins[None, :] - lower) / (centre - lower), (upper - bins[None, :]) / (upper - centre)),
                   0.0, None)


def triangular_filterbank(n_fft: int, sample_rate: float, edges_hz: np.ndarray) -> np.ndarray:
    """Triangular filters `[len(edges_hz) - 2, n_fft // 2 + 1]` (peak 1) between consecutive edges; a filter narrower
    than a bin keeps its nearest bin."""
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = np.asarray(edges_hz, dtype=np.float64)
    centre = edges[1:-1, None]
    fb = _triangles(bins, edges[:-2, None], centre, edges[2:, None])
    for i in np.flatnonzero(fb.sum(axis=1) == 0):
        fb[i, int(np.argmin(np.abs(bins - centre[i, 0])))] = 1.0
    return fb.astype(np.float32)


def interpolating_filterbank(n_fft: int, sample_rate: float, edges_hz: np.ndarray) -> np.ndarray:
    """Averaging triangular filters `[len(edges_hz) - 2, n_fft // 2 + 1]` (rows sum to 1): each reaches at least one
    bin either side of its centre, so a band narrower than a bin linearly interpolates its two neighbours."""
    bin_hz = sample_rate / n_fft
    edges = np.asarray(edges_hz, dtype=np.float64)
    centre = edges[1:-1, None]
    fb = _triangles(np.arange(n_fft // 2 + 1) * bin_hz, np.minimum(edges[:-2, None], centre - bin_hz), centre,
                    np.maximum(edges[2:, None], centre + bin_hz))
    return (fb / fb.sum(axis=1, keepdims=True)).astype(np.float32)


def mel_filterbank(n_fft: int, sample_rate: float, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular mel filters `[n_mels, n_fft // 2 + 1]` (peak 1); a filter narrower than a bin keeps its nearest bin."""
    return triangular_filterbank(n_fft, sample_rate, mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)))


class LogMel(nn.Module):
    """Log-mel spectrogram of `[batch, samples]` audio -> `[batch, n_mels, frames]` (natural log of power + 1e-8).

    Frames are `1 + samples // hop_length` (zero padding of n_fft // 2 on both sides, as a centred STFT). The power
    spectrum comes from `torch.stft` unless an ONNX export is running (or `use_fft` is False): then from the
    equivalent conv1d DFT, which every ONNX runtime supports.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, f_min: float, f_max: float):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        fb = mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max)
        n_bins = int(np.max(np.flatnonzero(fb.any(axis=0)))) + 1  # bins above the last filter are not computed
        n = np.arange(n_fft)[None, :]
        k = np.arange(n_bins)[:, None]
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
        scale = 2.0 / window.sum()  # a full-scale sinusoid has magnitude ~1
        cos = np.cos(2.0 * np.pi * k * n / n_fft) * window * scale
        sin = -np.sin(2.0 * np.pi * k * n / n_fft) * window * scale
        basis = np.concatenate([cos, sin], axis=0)[:, None, :]
        self.register_buffer("basis", torch.from_numpy(basis.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.from_numpy((window * scale).astype(np.float32)), persistent=False)
        self.register_buffer("mel", torch.from_numpy(fb[:, :n_bins]), persistent=False)
        self.n_bins = n_bins
        self.use_fft = True

    def power_dft(self, audio: torch.Tensor) -> torch.Tensor:
        """Power spectrum `[batch, n_bins, frames]` by the conv1d DFT (the exported form)."""
        pad = self.n_fft // 2
        frames = F.conv1d(F.pad(audio.unsqueeze(1), (pad, pad)), self.basis, stride=self.hop_length)
        re, im = frames[:, : self.n_bins], frames[:, self.n_bins :]
        return re * re + im * im

    def power_fft(self, audio: torch.Tensor) -> torch.Tensor:
        """Power spectrum `[batch, n_bins, frames]` by `torch.stft` (same window, scale, padding and frames)."""
        spec = torch.stft(audio, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)[:, : self.n_bins]
        return spec.real.square() + spec.imag.square()

    def power(self, audio: torch.Tensor) -> torch.Tensor:
        """Power spectrum `[batch, n_bins, frames]`: `torch.stft` in training, the conv1d DFT in an ONNX export."""
        fft = self.use_fft and not torch.onnx.is_in_onnx_export() and audio.shape[-1] > self.n_fft // 2
        return self.power_fft(audio) if fft else self.power_dft(audio)

    def log_mel(self, power: torch.Tensor) -> torch.Tensor:
        """Power `[batch, n_bins, frames]` -> log-mel `[batch, n_mels, frames]`."""
        return torch.log(torch.matmul(self.mel, power) + 1e-8)

    def forward(self, audio: torch.Tensor, with_power: bool = False) -> Any:
        """`[batch, samples]` -> log-mel `[batch, n_mels, frames]` (and the power `[batch, n_bins, frames]` it came
        from, as a pair, when `with_power`)."""
        power = self.power(audio)
        mel = self.log_mel(power)
        return (mel, power) if with_power else mel


@dataclass
class EncoderConfig:
    """Front-end and network sizes (everything needed to rebuild the model, with the vocabulary)."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float = 20000.0
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    hidden: int = 512
    dropout: float = 0.1
    #: "chain": one parameter set per candidate chain; "effect": one set per effect, shared by every chain that
    #: holds it (broadcast to `[batch, n_chains, n_params]`, so the outputs keep their shape). Sharing lets a win
    #: of any chain train the parameters of its effects for all chains, a guard against hypothesis collapse.
    param_sharing: str = "chain"
    #: time pooling factor after each 2-D block (None: 2 after every block); frequency always pools by 2
    time_pools: list[int] | None = None
    #: dilations of the residual 1-D convolutions over frames after the 2-D blocks (empty: none)
    tcn_dilations: list[int] = field(default_factory=list)
    tcn_channels: int = 192
    #: "chain": a free logit per candidate chain; "presence": chain logits from per-effect presence logits
    chain_scoring: str = "chain"
    #: frame lags (1..N) of the band-envelope autocorrelations fed to the trunk beside the pooled CNN features
    #: (EnvelopeLags: echo spacing and modulation periods, which pooling over time blurs); 0: none
    envelope_lags: int = 0
    #: mel bands averaged into this many envelopes for EnvelopeLags (must divide n_mels)
    envelope_bands: int = 16
    #: size of EnvelopeLags' output
    envelope_features: int = 256
    #: log-spaced bands of the long-term spectrum fed to the trunk (SpectrumShape: a PeakFilter's bell, which the
    #: CNN's frequency pooling blurs); 0: none
    spectrum_bins: int = 0
    #: size of SpectrumShape's output
    spectrum_features: int = 256


#: EncoderConfig knobs that only add inputs to the trunk, by the switch that turns each on (0: absent): a checkpoint
#: without some of them can start a model with them (training.trainer's init_from gives their inputs zero weights)
SIDE_FEATURES: dict[str, tuple[str, ...]] = {
    "envelope_lags": ("envelope_lags", "envelope_bands", "envelope_features"),
    "spectrum_bins": ("spectrum_bins", "spectrum_features"),
}

#: SpectrumShape's band range (Hz): an octave either side of PeakFilter's centre-frequency range (200-6000 Hz)
SPECTRUM_F_MIN, SPECTRUM_F_MAX = 100.0, 12000.0

PARAM_SHARING = ("chain", "effect")
CHAIN_SCORING = ("chain", "presence")


class DilatedResidual(nn.Module):
    """`x + conv1x1(relu(bn(dilated conv(x))))` over frames: `[batch, channels, frames]` in and out."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(channels)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.relu(self.norm(self.conv(x))))


class EnvelopeLags(nn.Module):
    """Band-envelope autocorrelations over frame lags 1..`lags`: log-mel `[batch, n_mels, frames]` -> `[batch, out]`.

    The mel bands are averaged into `bands` envelopes; each envelope's level and its onset strength (the positive
    first difference) lose their mean over time and are correlated with themselves `l` frames later, l = 1..lags,
    normalised by the lag-0 value (an echo after `l` frames, or a modulation of period `l`, is a peak at `l`; frames
    past the end count as zeros, so any length works); a linear layer with ReLU maps the `2 x bands x lags` values to
    `out` features.
    """

    def __init__(self, n_mels: int, bands: int, lags: int, out: int):
        super().__init__()
        if bands < 1 or n_mels % bands:
            raise ValueError(f"envelope_bands must divide n_mels ({n_mels}), got {bands}")
        if lags < 1:
            raise ValueError(f"envelope_lags must be >= 1, got {lags}")
        self.bands, self.lags = bands, lags
        self.proj = nn.Linear(2 * bands * lags, out)
        # one-hot kernels: a convolution with them lists e[t + l] for l = 0..lags as channels (one graph node; a loop
        # over lags made ~700 small ONNX nodes: v6's exported encoder took 1.18x v5's time per window, now 1.01x)
        self.register_buffer("shifts", torch.eye(lags + 1).unsqueeze(1), persistent=False)

    def correlations(self, mel: torch.Tensor) -> torch.Tensor:
        """`[batch, 2, bands, lags]`: the normalised autocorrelations of the levels (0) and onsets (1)."""
        b, m, t = mel.shape
        level = mel.reshape(b, self.bands, m // self.bands, t).mean(dim=2)  # [batch, bands, frames]
        onset = F.relu(level[..., 1:] - level[..., :-1])
        parts = []
        for e in (level, onset):
            e = e - e.mean(dim=-1, keepdim=True)  # [batch, bands, n]
            n = e.shape[-1]
            shifted = F.conv1d(F.pad(e, (0, self.lags)).reshape(b * self.bands, 1, n + self.lags), self.shifts)
            corr = (shifted * e.reshape(b * self.bands, 1, n)).sum(dim=-1)  # [batch * bands, lags + 1]: lag 0..lags
            corr = corr.reshape(b, self.bands, self.lags + 1)
            parts.append(corr[..., 1:] / (corr[..., :1] + 1e-6))
        return torch.stack(parts, dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return F.relu(self.proj(self.correlations(mel).flatten(1)))


class SpectrumShape(nn.Module):
    """Fine long-term spectrum: power `[batch, n_bins, frames]` -> `[batch, out]`.

    The power is averaged over frames and over `bins` log-spaced triangular bands between `f_min` and `f_max`,
    logged and centred (level-free). Two channels go to a small 1-D CNN over frequency: that shape, and its deviation
    from its own moving average over about an octave (a bell's peak or dip stands out of the instrument's broad
    tilt, which pooling the mel CNN over frequency blurs); the maps are flattened (frequency position kept) and a
    linear layer with ReLU gives `out` features.
    """

    def __init__(self, n_fft: int, sample_rate: float, n_bins: int, bins: int, out: int,
                 f_min: float = SPECTRUM_F_MIN, f_max: float = SPECTRUM_F_MAX):
        super().__init__()
        if bins < 16:
            raise ValueError(f"spectrum_bins must be 0 (off) or >= 16, got {bins}")
        fb = interpolating_filterbank(n_fft, sample_rate, np.geomspace(f_min, f_max, bins + 2))
        if fb[:, n_bins:].any():
            raise ValueError(f"SpectrumShape's bands reach above the front-end's last bin ({n_bins})")
        self.register_buffer("bands", torch.from_numpy(fb[:, :n_bins]), persistent=False)
        octave = bins / math.log2(f_max / f_min)
        self.smooth = 2 * int(octave / 2) + 1  # odd moving-average width, about an octave of bands
        self.norm = nn.BatchNorm1d(2)
        self.cnn = nn.Sequential(
            nn.Conv1d(2, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
        )
        width = bins
        for _ in range(2):
            width = (width - 1) // 2 + 1
        self.proj = nn.Linear(32 * width, out)

    def shape(self, power: torch.Tensor) -> torch.Tensor:
        """`[batch, 2, bins]`: the centred log band spectrum and its deviation from a one-octave moving average."""
        ltas = torch.log(torch.matmul(self.bands, power.mean(dim=-1, keepdim=True))[..., 0] + 1e-10)
        ltas = ltas - ltas.mean(dim=-1, keepdim=True)
        trend = F.avg_pool1d(ltas.unsqueeze(1), self.smooth, stride=1, padding=self.smooth // 2,
                             count_include_pad=False)[:, 0]
        return torch.stack([ltas, ltas - trend], dim=1)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return F.relu(self.proj(self.cnn(self.norm(self.shape(power))).flatten(1)))


def trunk_freq(c: EncoderConfig) -> int:
    """Mel bands left after the 2-D blocks' frequency pooling (by 2 each)."""
    freq = c.n_mels
    for _ in c.channels:
        freq = math.ceil(freq / 2)
    return freq


def trunk_input_widths(c: EncoderConfig) -> list[tuple[str, int]]:
    """The trunk's input, in order: ("cnn", pooled CNN width) then one (switch key, width) per side feature on."""
    width = c.channels[-1] * trunk_freq(c)
    parts = [("cnn", 3 * c.tcn_channels if c.tcn_dilations else 2 * width)]
    if c.envelope_lags:
        parts.append(("envelope_lags", c.envelope_features))
    if c.spectrum_bins:
        parts.append(("spectrum_bins", c.spectrum_features))
    return parts


def chain_membership(vocab: ChainVocabulary) -> np.ndarray:
    """`[n_chains, n_effects]` float32: 1 where effect e is in chain k."""
    names = vocab.effect_names
    return np.array([[float(n in chain) for n in names] for chain in vocab.chains], dtype=np.float32)


def presence_to_chain_logits(presence_logits: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """Chain logits `[batch, n_chains]` from presence logits `[batch, n_effects]` and membership `[n_chains, n_effects]`."""
    return log_sigmoid(presence_logits) @ membership.T + log_sigmoid(-presence_logits) @ (1.0 - membership).T


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log σ(x) as min(x, 0) - log(1 + exp(-|x|)): finite for any x, also in the exported graph (no log(0))."""
    return torch.clamp(x, max=0.0) - torch.log(1.0 + torch.exp(-x.abs()))


class Encoder(nn.Module):
    """f_θ: audio `[batch, samples]` -> (chain_logits `[batch, n_chains]`, params `[batch, n_chains, n_params]`)."""

    def __init__(self, vocab: ChainVocabulary, config: EncoderConfig | None = None):
        super().__init__()
        self.vocab = vocab
        self.cfg = config or EncoderConfig()
        c = self.cfg
        if c.param_sharing not in PARAM_SHARING:
            raise ValueError(f"param_sharing must be one of {PARAM_SHARING}, got {c.param_sharing!r}")
        if c.chain_scoring not in CHAIN_SCORING:
            raise ValueError(f"chain_scoring must be one of {CHAIN_SCORING}, got {c.chain_scoring!r}")
        time_pools = list(c.time_pools) if c.time_pools is not None else [2] * len(c.channels)
        if len(time_pools) != len(c.channels) or any(p < 1 for p in time_pools):
            raise ValueError(f"time_pools needs one factor >= 1 per 2-D block ({len(c.channels)}), got {time_pools}")
        self.frontend = LogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.f_min, min(c.f_max, c.sample_rate / 2))
        self.input_norm = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        in_ch = 1
        for out_ch, time_pool in zip(c.channels, time_pools):
            blocks += [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(),
                       nn.MaxPool2d((2, time_pool), ceil_mode=True)]
            in_ch = out_ch
        self.cnn = nn.Sequential(*blocks)
        if c.tcn_dilations:
            width = c.channels[-1] * trunk_freq(c)
            self.tcn: nn.Module = nn.Sequential(nn.Conv1d(width, c.tcn_channels, 1),
                                                *[DilatedResidual(c.tcn_channels, d) for d in c.tcn_dilations])
        else:
            self.tcn = nn.Identity()  # mean and max over frames (the v1/v2 encoder); with a TCN also the std
        self.envelope_lags: nn.Module | None = None
        if c.envelope_lags:
            self.envelope_lags = EnvelopeLags(c.n_mels, c.envelope_bands, c.envelope_lags, c.envelope_features)
        self.spectrum: nn.Module | None = None
        if c.spectrum_bins:
            self.spectrum = SpectrumShape(c.n_fft, c.sample_rate, self.frontend.n_bins, c.spectrum_bins,
                                          c.spectrum_features, f_max=min(SPECTRUM_F_MAX, 0.9 * c.sample_rate / 2))
        pooled = sum(w for _, w in trunk_input_widths(c))  # side features appended after the pooled CNN features
        self.trunk = nn.Sequential(
            nn.Linear(pooled, c.hidden), nn.ReLU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.hidden), nn.ReLU(),
        )
        self.n_chains, self.n_params = vocab.n_chains, vocab.n_params
        if c.chain_scoring == "presence":
            self.chain_head = nn.Linear(c.hidden, len(vocab.effects))
            self.register_buffer("membership", torch.from_numpy(chain_membership(vocab)), persistent=False)
        else:
            self.chain_head = nn.Linear(c.hidden, self.n_chains)
        self.param_sets = self.n_chains if c.param_sharing == "chain" else 1
        self.param_head = nn.Linear(c.hidden, self.param_sets * max(1, self.n_params))

    @property
    def config(self) -> dict[str, Any]:
        """JSON-ready config: the encoder sizes and the vocabulary (stored in checkpoints and ONNX metadata)."""
        return {"encoder": asdict(self.cfg), "vocabulary": self.vocab.to_dict()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Encoder:
        """Rebuild from `config` (the `config` property's dict)."""
        return cls(ChainVocabulary.from_dict(config["vocabulary"]), EncoderConfig(**config["encoder"]))

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """Shared embedding `[batch, hidden]` of audio `[batch, samples]`."""
        mel, power = self.frontend(audio, with_power=True)  # power: [batch, n_bins, frames], for SpectrumShape
        mel = mel.unsqueeze(1)  # [batch, 1, n_mels, frames]
        h = self.cnn(self.input_norm(mel))  # [batch, C, F, T]
        side = [] if self.envelope_lags is None else [self.envelope_lags(mel[:, 0])]
        if self.spectrum is not None:
            side.append(self.spectrum(power))
        h = h.flatten(1, 2)  # [batch, C * F, T]
        if self.cfg.tcn_dilations:
            h = self.tcn(h)  # [batch, tcn_channels, T]
            mean = h.mean(dim=-1)
            std = (h - mean.unsqueeze(-1)).square().mean(dim=-1).add(1e-6).sqrt()
            pooled = torch.cat([mean, h.amax(dim=-1), std, *side], dim=1)
        else:
            pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1), *side], dim=1)
        return self.trunk(pooled)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio `[batch, samples]` at `sample_rate` -> chain_logits `[batch, n_chains]`, params in [0, 1]."""
        h = self.features(audio)
        logits = self.chain_head(h)
        if self.cfg.chain_scoring == "presence":
            logits = presence_to_chain_logits(logits, self.membership)
        params = torch.sigmoid(self.param_head(h)).reshape(-1, self.param_sets, max(1, self.n_params))
        if self.param_sets != self.n_chains:
            params = params.expand(-1, self.n_chains, -1)
        return logits, params[..., : self.n_params]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
