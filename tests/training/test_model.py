import numpy as np
import pytest
import torch

from fxmatch.effects.spec import EffectSpec, ParamSpec
from fxmatch.vocabulary import ChainVocabulary
from training.model import Encoder, EncoderConfig, LogMel, count_parameters, mel_filterbank

DESIGN_PARAM_COUNTS = {"Compressor": 4, "Distortion": 1, "PeakFilter": 3, "Chorus": 5, "Phaser": 5, "Delay": 3,
                       "Reverb": 4}


def design_sized_vocab() -> ChainVocabulary:
    """A vocabulary shaped like DESIGN.md's default (7 effects, 25 params, 64 chains) without needing every twin."""
    specs = tuple(EffectSpec(name, tuple(ParamSpec(f"p{i}", "", 0.0, 1.0) for i in range(n)))
                  for name, n in DESIGN_PARAM_COUNTS.items())
    return ChainVocabulary(effects=specs, max_length=3)


SMALL = EncoderConfig(sample_rate=16000, n_fft=512, hop_length=128, n_mels=32, channels=[8, 16], hidden=32)
TCN_PRESENCE = EncoderConfig(sample_rate=16000, n_fft=512, hop_length=128, n_mels=32, channels=[8, 16],
                             time_pools=[2, 1], tcn_dilations=[1, 2, 4], tcn_channels=24, hidden=32,
                             param_sharing="effect", chain_scoring="presence")
LAGS = EncoderConfig(**{**TCN_PRESENCE.__dict__, "envelope_lags": 20, "envelope_bands": 8, "envelope_features": 16})
SIDE = EncoderConfig(**{**LAGS.__dict__, "spectrum_bins": 32, "spectrum_features": 8})


def test_encoder_outputs_have_the_contract_shapes_for_any_length(tiny_vocab):
    model = Encoder(tiny_vocab, SMALL).eval()
    for samples in (300, 4000, 16000):
        logits, params = model(torch.randn(3, samples) * 0.1)
        assert logits.shape == (3, tiny_vocab.n_chains)
        assert params.shape == (3, tiny_vocab.n_chains, tiny_vocab.n_params)
        assert torch.all((params >= 0) & (params <= 1))


def test_default_sized_encoder_has_a_few_million_parameters():
    vocab = design_sized_vocab()
    model = Encoder(vocab)
    assert vocab.n_chains == 64 and vocab.n_params == 25
    assert 0.5e6 < count_parameters(model) < 5e6


@pytest.mark.parametrize("config", [SMALL, TCN_PRESENCE], ids=["cnn", "tcn-presence"])
def test_encoder_rebuilds_from_its_config(tiny_vocab, config):
    model = Encoder(tiny_vocab, config).eval()
    clone = Encoder.from_config(model.config).eval()
    clone.load_state_dict(model.state_dict())
    x = torch.randn(2, 5000) * 0.1
    assert torch.equal(model(x)[0], clone(x)[0])
    assert clone.vocab.chains == tiny_vocab.chains


def test_logmel_puts_a_sinusoid_in_the_right_band():
    sr, f = 16000, 1000.0
    frontend = LogMel(sr, 512, 128, 40, 20.0, 8000.0)
    t = torch.arange(sr) / sr
    mel = frontend(torch.sin(2 * torch.pi * f * t)[None])[0]
    fb = mel_filterbank(512, sr, 40, 20.0, 8000.0)
    expected = int(np.argmax(fb[:, round(f * 512 / sr)]))
    assert int(mel[:, 10:-10].mean(dim=1).argmax()) == expected
    assert mel.shape[-1] == 1 + sr // 128


def test_mel_filterbank_has_no_empty_filter():
    fb = mel_filterbank(256, 44100, 64, 20.0, 20000.0)
    assert np.all(fb.sum(axis=1) > 0)


def test_effect_shared_params_are_one_set_broadcast_to_every_chain(tiny_vocab):
    shared = Encoder(tiny_vocab, EncoderConfig(**{**SMALL.__dict__, "param_sharing": "effect"})).eval()
    per_chain = Encoder(tiny_vocab, SMALL)
    _, params = shared(torch.randn(2, 4000) * 0.1)
    assert params.shape == (2, tiny_vocab.n_chains, tiny_vocab.n_params)
    assert torch.equal(params, params[:, :1].expand_as(params))
    assert count_parameters(shared) < count_parameters(per_chain)
    # a loss on one chain's params trains the shared set, i.e. the params every other chain reads
    shared.train()
    shared(torch.randn(2, 4000) * 0.1)[1][:, -1].sum().backward()
    assert shared.param_head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="param_sharing"):
        Encoder(tiny_vocab, EncoderConfig(**{**SMALL.__dict__, "param_sharing": "both"}))


@pytest.mark.parametrize("sharing", ["chain", "effect", "tcn-presence", "envelope-lags", "lags-and-spectrum"])
def test_encoder_exports_to_onnx_with_dynamic_batch_and_length(tmp_path, tiny_vocab, sharing):
    """The ONNX graph (conv-DFT front-end) matches PyTorch (torch.stft front-end) for every architecture."""
    ort = pytest.importorskip("onnxruntime")
    config = {"tcn-presence": TCN_PRESENCE, "envelope-lags": LAGS, "lags-and-spectrum": SIDE}.get(sharing) or EncoderConfig(
        **{**SMALL.__dict__, "param_sharing": sharing})
    model = Encoder(tiny_vocab, config).eval()
    path = tmp_path / "encoder.onnx"
    torch.onnx.export(model, (torch.randn(1, 8000),), str(path), input_names=["audio"],
                      output_names=["chain_logits", "params"], dynamic_axes={"audio": {0: "batch", 1: "samples"}},
                      dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for samples in (12000, 1500):  # another length than the traced one; fewer frames than envelope lags
        audio = (np.random.default_rng(0).standard_normal((2, samples)) * 0.1).astype(np.float32)
        logits, params = session.run(None, {"audio": audio})
        with torch.no_grad():
            ref_logits, ref_params = model(torch.from_numpy(audio))
        assert np.all(np.isfinite(logits)) and np.all(np.isfinite(params))
        assert np.allclose(logits, ref_logits.numpy(), atol=1e-4)
        assert np.allclose(params, ref_params.numpy(), atol=1e-4)


def test_envelope_lags_peak_at_the_echo_time():
    """Clicks at random times plus their echo 0.3 s later: the onset autocorrelation of every band peaks there."""
    from training.model import EnvelopeLags

    rate, hop = 16000, 128
    x = np.zeros(3 * rate, dtype=np.float32)
    rng = np.random.default_rng(4)
    for start in rng.choice(np.arange(0, 2 * rate, hop), size=12, replace=False):
        x[start : start + 64] += rng.standard_normal(64).astype(np.float32)
    delay = round(0.3 * rate / hop) * hop  # a whole number of frames: 37
    y = x.copy()
    y[delay:] += 0.7 * x[:-delay]
    mel = LogMel(rate, 512, hop, 32, 20.0, 8000.0)(torch.from_numpy(y)[None])
    corr = EnvelopeLags(32, 8, 60, 4).correlations(mel)[0]  # [2, bands, lags]
    lag = delay // hop
    assert corr.shape == (2, 8, 60)
    assert torch.all(corr[1].argmax(dim=-1) + 1 == lag)
    assert torch.all(corr[1, :, lag - 1] > 0.3) and torch.all(corr.abs() <= 1.0 + 1e-5)



@pytest.mark.parametrize("samples", [300, 4000, 44100])
def test_training_front_end_stft_equals_the_exported_conv_dft(samples):
    frontend = LogMel(44100, 2048, 512, 64, 20.0, 20000.0)
    audio = torch.randn(3, samples, generator=torch.Generator().manual_seed(samples)) * 0.2
    with torch.no_grad():
        fft = frontend.power_fft(audio) if samples > 1024 else frontend.power_dft(audio)
        dft = frontend.power_dft(audio)
    assert fft.shape == dft.shape
    assert torch.allclose(fft, dft, rtol=1e-4, atol=1e-6 * float(dft.max()))
    frontend.use_fft = False
    conv = frontend(audio)
    frontend.use_fft = True
    assert torch.allclose(frontend(audio), conv, atol=1e-3)


def test_presence_scoring_makes_chain_probabilities_a_product_of_effect_presences():
    vocab = design_sized_vocab()
    model = Encoder(vocab, EncoderConfig(**{**TCN_PRESENCE.__dict__, "sample_rate": 16000})).eval()
    presence = torch.tensor([[2.0, -1.0, 0.5, -3.0, 0.0, 1.0, -0.5]])
    from training.model import chain_membership, presence_to_chain_logits

    logits = presence_to_chain_logits(presence, torch.from_numpy(chain_membership(vocab)))
    p = torch.sigmoid(presence)[0]
    for k in (0, 5, 20, 63):
        members = [vocab.effect_names.index(n) for n in vocab.chains[k]]
        expected = torch.prod(torch.where(torch.isin(torch.arange(7), torch.tensor(members, dtype=torch.long)),
                                          p, 1 - p))
        assert float(logits[0, k].exp()) == pytest.approx(float(expected), rel=1e-5)
    # the encoder's outputs keep the contract shapes
    out_logits, params = model(torch.randn(2, 8000) * 0.1)
    assert out_logits.shape == (2, 64) and params.shape == (2, 64, 25)
    assert torch.all(out_logits <= 0)  # log-probabilities of independent presences


def test_tcn_encoder_has_dilated_convolutions_over_frames(tiny_vocab):
    model = Encoder(tiny_vocab, TCN_PRESENCE).eval()
    assert any(isinstance(m, torch.nn.Conv1d) and m.dilation == (4,) for m in model.modules())


def test_bad_time_pools_and_chain_scoring_are_refused(tiny_vocab):
    with pytest.raises(ValueError, match="time_pools"):
        Encoder(tiny_vocab, EncoderConfig(**{**SMALL.__dict__, "time_pools": [2]}))
    with pytest.raises(ValueError, match="chain_scoring"):
        Encoder(tiny_vocab, EncoderConfig(**{**SMALL.__dict__, "chain_scoring": "votes"}))


def test_log_sigmoid_is_finite_and_exact_far_from_zero():
    from training.model import log_sigmoid

    x = torch.tensor([-200.0, -30.0, -1.0, 0.0, 1.0, 30.0, 200.0])
    assert torch.all(torch.isfinite(log_sigmoid(x)))
    assert torch.allclose(log_sigmoid(x), torch.nn.functional.logsigmoid(x), atol=1e-6)


def test_spectrum_shape_finds_a_peak_filters_bell():
    """Pink-ish noise through pedalboard's PeakFilter (+9 dB): the detrended band spectrum rises above the dry one's
    most at the filter's centre, and the band spectrum there by more than 5 dB."""
    import pedalboard

    from training.model import SpectrumShape

    rate = 44100
    rng = np.random.default_rng(8)
    white = np.fft.rfft(rng.standard_normal(2 * rate))
    freqs = np.fft.rfftfreq(2 * rate, 1 / rate)
    dry = np.fft.irfft(white / np.sqrt(np.maximum(freqs, 20.0)), n=2 * rate).astype(np.float32)
    dry *= 0.1 / dry.std()
    frontend = LogMel(rate, 2048, 512, 64, 20.0, 20000.0)
    shape = SpectrumShape(2048, rate, frontend.n_bins, 128, 8)
    centres = np.geomspace(100.0, 12000.0, 130)[1:-1]
    for centre_hz in (300.0, 1000.0, 4000.0):
        wet = pedalboard.PeakFilter(cutoff_frequency_hz=centre_hz, gain_db=9.0, q=2.0)(dry, rate)
        with torch.no_grad():
            wet_shape, dry_shape = (shape.shape(frontend.power(torch.from_numpy(a)[None]))[0].numpy() for a in (wet, dry))
        found = centres[int(np.argmax(wet_shape[1] - dry_shape[1]))]  # the detrended channel
        assert abs(np.log2(found / centre_hz)) < 0.1, (centre_hz, found)
        at = int(np.argmin(np.abs(np.log2(centres / centre_hz))))
        assert wet_shape[0, at] - dry_shape[0, at] > 1.2  # natural-log power: more than 5 dB of the 9
