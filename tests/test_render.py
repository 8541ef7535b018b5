"""fxmatch.render: the batched chain renderer gives each row the audio (and gradient) of its chain rendered alone."""

from __future__ import annotations

import pytest
import torch

from fxmatch.effects import get_effect, get_spec
from fxmatch.layout import ParamLayout
from fxmatch.native_rate import phaser_at_rate
from fxmatch.render import ChainRenderer
from fxmatch.vocabulary import ChainVocabulary
from tests.render_helpers import render_alone

RATE = 16000
CHAINS = [(), ("Compressor",), ("Distortion", "Phaser"), ("Compressor", "Distortion", "PeakFilter"), ("Phaser",),
          ("Compressor", "Distortion"), ("Compressor", "Distortion")]


@pytest.fixture(scope="module")
def layout() -> ParamLayout:
    return ParamLayout.of_chains(CHAINS, output_level=True)


def _signals(layout: ParamLayout, rows: int, samples: int = 2400) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded dry audio `[rows, samples]` and params `[rows, width]` in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(4)
    return torch.randn(rows, samples, generator=g) * 0.2, torch.rand(rows, layout.width, generator=g) * 0.8 + 0.1


@pytest.mark.parametrize("one_source", [True, False])
def test_each_row_gets_the_audio_of_its_chain_rendered_alone(layout, one_source):
    x, unit = _signals(layout, len(CHAINS))
    x = x[:1] if one_source else x
    out = ChainRenderer(layout).render(x, unit, CHAINS, RATE)
    assert out.shape == (len(CHAINS), x.shape[-1])
    for i, chain in enumerate(CHAINS):
        dry = x[:1] if one_source else x[i : i + 1]
        torch.testing.assert_close(out[i : i + 1], render_alone(layout, chain, dry, unit[i : i + 1], RATE),
                                   rtol=1e-6, atol=1e-7)


def test_each_rows_params_get_the_gradient_of_their_row_alone(layout):
    """Rows with one chain and the same params are still rendered apart: capture fits each row's params."""
    x, unit = _signals(layout, len(CHAINS))
    unit[-1] = unit[-2]  # two rows: one chain, one setting
    weights = torch.linspace(0.5, 2.0, len(CHAINS))
    batched = unit.clone().requires_grad_(True)
    (weights[:, None] * ChainRenderer(layout).render(x[:1], batched, CHAINS, RATE).square()).sum().backward()
    for i, chain in enumerate(CHAINS):
        alone = unit[i : i + 1].clone().requires_grad_(True)
        if chain:
            (weights[i] * render_alone(layout, chain, x[:1], alone, RATE).square()).sum().backward()
            torch.testing.assert_close(batched.grad[i], alone.grad[0], rtol=1e-4, atol=1e-7)
        else:
            assert float(batched.grad[i].abs().sum()) == 0.0
    assert float(batched.grad[-1].abs().sum()) > 0


def test_the_output_level_slot_scales_each_row(layout):
    x, unit = _signals(layout, len(CHAINS))
    unit[:, layout.gain] = torch.linspace(0.0, 1.0, len(CHAINS))
    renderer = ChainRenderer(layout)
    plain = renderer.render(x[:1], unit, CHAINS, RATE)
    level = renderer.render(x[:1], unit, CHAINS, RATE, output_level=True)
    scale = 10.0 ** (layout.gain_db(unit[:, layout.gain]) / 20.0)
    assert float(scale[0]) == pytest.approx(10 ** (-24 / 20)) and float(scale[-1]) == pytest.approx(10 ** (24 / 20))
    torch.testing.assert_close(level, plain * scale[:, None])
    without = ParamLayout(layout.effects)
    with pytest.raises(ValueError, match="output-level"):
        ChainRenderer(without).render(x[:1], unit[:, : without.width], CHAINS, RATE, output_level=True)


def test_a_phaser_below_its_native_rate_sweeps_the_cutoffs_it_sweeps_there(layout):
    x, unit = _signals(layout, 1)
    out = ChainRenderer(layout).render(x, unit, [("Phaser",)], RATE, native=2 * RATE)
    phaser = get_effect("Phaser")
    params = phaser.spec.denormalise(unit[:, layout.param_slice("Phaser")])
    moved = phaser_at_rate(params, RATE, 2 * RATE)
    torch.testing.assert_close(out, phaser.process(x[:, None], moved, RATE)[:, 0], rtol=1e-6, atol=1e-7)
    # pedalboard's sweep scale (20 Hz - min(20 kHz, 0.49 rate)) is shorter at the lower rate: centre and depth rise
    assert float(moved["centre_frequency_hz"]) > float(params["centre_frequency_hz"])
    assert float(moved["depth"]) > float(params["depth"])
    same = phaser_at_rate(params, RATE, RATE)
    torch.testing.assert_close(same["centre_frequency_hz"], params["centre_frequency_hz"])


@pytest.fixture(scope="module")
def three_vocab() -> ChainVocabulary:
    """Compressor, Distortion, PeakFilter, chains of 0 to 3 effects (8 chains, canonical order: shared prefixes)."""
    return ChainVocabulary(effects=tuple(get_spec(n) for n in ("Compressor", "Distortion", "PeakFilter")),
                           max_length=3)


def _candidate_batch(vocab: ChainVocabulary, shared: bool, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Dry audio `[batch, 3000]` and params `[batch, n_chains, n_params]` (one set per effect when `shared`, as the
    encoder's param_sharing "effect" gives)."""
    torch.manual_seed(1)
    x = torch.randn(batch, 3000) * 0.2
    if shared:
        return x, (torch.rand(batch, 1, vocab.n_params) * 0.8 + 0.1).expand(-1, vocab.n_chains, -1).clone()
    return x, torch.rand(batch, vocab.n_chains, vocab.n_params) * 0.8 + 0.1


@pytest.mark.parametrize("shared", [True, False])
def test_prefix_shared_candidates_each_get_their_own_chains_audio(three_vocab, shared):
    x, params = _candidate_batch(three_vocab, shared)
    renderer = ChainRenderer.of_vocabulary(three_vocab, RATE)
    candidates = torch.tensor([[7, 4, 1, 0], [7, 5, 2, 1], [6, 3, 4, 0]])  # (C,D,P) with (C,D), (C), ...
    audio, examples, index = renderer.render_candidates(x, params, candidates)
    for b in range(3):
        for c in range(4):
            k = int(candidates[b, c])
            direct = render_alone(three_vocab.layout, three_vocab.chains[k], x[b : b + 1], params[b : b + 1, k], RATE)
            assert int(examples[index[b, c]]) == b
            torch.testing.assert_close(audio[index[b, c]], direct[0], rtol=1e-6, atol=1e-7)
    # distinct renders: one per candidate (no two candidates of a row are one chain)
    assert audio.shape[0] == 12 and len(set(index.flatten().tolist())) == 12


def test_shared_prefixes_are_rendered_once(three_vocab, monkeypatch):
    x, params = _candidate_batch(three_vocab, shared=True, batch=1)
    renderer = ChainRenderer.of_vocabulary(three_vocab, RATE)
    calls = []
    for name, effect in renderer.effects.items():
        def counted(xx, p, sr, _process=effect.process, _name=name):
            calls.append((_name, xx.shape[0]))
            return _process(xx, p, sr)

        monkeypatch.setitem(renderer.effects, name, type(effect)(effect.spec, counted))
    candidates = torch.tensor([[1, 4, 7]])  # (C), (C, D), (C, D, P): one Compressor, one Distortion, one PeakFilter
    renderer.render_candidates(x, params, candidates)
    assert sorted(calls) == [("Compressor", 1), ("Distortion", 1), ("PeakFilter", 1)]
    calls.clear()
    unshared = params.clone()
    unshared[0, 4, three_vocab.param_slice("Compressor")] += 0.1  # (C, D) has its own Compressor params
    renderer.render_candidates(x, unshared, candidates)
    assert sorted(calls) == [("Compressor", 2), ("Distortion", 2), ("PeakFilter", 1)]
    calls.clear()
    renderer.render(x, params[0, [1, 4, 7]], [three_vocab.chains[k] for k in (1, 4, 7)])  # `render` never shares
    assert sorted(calls) == [("Compressor", 3), ("Distortion", 2), ("PeakFilter", 1)]
