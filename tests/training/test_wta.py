import pytest
import torch

from fxmatch.effects import distortion
from fxmatch.metrics import mrstft_distance
from fxmatch.render import ChainRenderer
from tests.render_helpers import render_alone
from training import wta
from training.baselines import full_chain_vocabulary, supervised_step


def _alone(vocab, k: int, x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """Chain k of `vocab` on its own (the reference for the batched renders) at 16 kHz."""
    return render_alone(vocab.layout, vocab.chains[k], x, unit, 16000)


class FixedModel(torch.nn.Module):
    """A stand-in encoder returning given logits and params whatever the input."""

    def __init__(self, logits: torch.Tensor, params: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())
        self.params = torch.nn.Parameter(params.clone())

    def forward(self, audio):
        return self.logits, self.params


def _distorted_batch(tiny_vocab, drives):
    torch.manual_seed(0)
    x = torch.randn(len(drives), 2000) * 0.1
    y = distortion.process(x[:, None], {"drive_db": torch.tensor(drives)}, 16000)[:, 0]
    params = torch.rand(len(drives), tiny_vocab.n_chains, tiny_vocab.n_params) * 0.2 + 0.4
    k = tiny_vocab.chain_index(["Distortion"])
    sl = tiny_vocab.param_slice("Distortion")
    params[:, k, sl] = distortion.SPEC.normalise({"drive_db": torch.tensor(drives)}).float()
    return x, y, params, k


def test_wta_picks_the_min_loss_candidate(tiny_vocab):
    x, y, params, k = _distorted_batch(tiny_vocab, [12.0, 30.0])
    renderer = ChainRenderer.of_vocabulary(tiny_vocab, 16000)
    model = FixedModel(torch.zeros(2, tiny_vocab.n_chains), params)
    result = wta.wta_step(model, renderer, x, y, wta.make_audio_loss((256, 64)), top_k=4, n_explore=0,
                          temperature=0.0)
    assert result.winners.tolist() == [k, k]
    assert result.fit.item() == pytest.approx(0.0, abs=1e-3)
    assert result.ce.item() == pytest.approx(torch.log(torch.tensor(4.0)).item(), rel=1e-5)


def test_candidate_losses_equal_per_example_losses(tiny_vocab):
    x, y, params, _ = _distorted_batch(tiny_vocab, [10.0, 20.0, 35.0])
    renderer = ChainRenderer.of_vocabulary(tiny_vocab, 16000)
    loss_fn = wta.make_audio_loss((256, 64))
    candidates = torch.tensor([[0, 3], [2, 1], [3, 2]])
    losses = wta.candidate_losses(renderer, x, y, params, candidates, loss_fn)
    for b in range(3):
        for c in range(2):
            k = int(candidates[b, c])
            direct = loss_fn(_alone(tiny_vocab, k, x[b : b + 1], params[b : b + 1, k]), y[b : b + 1])
            assert losses[b, c].item() == pytest.approx(direct.item(), rel=1e-5)
    # the target spectra shared by all candidates give what a plain per-call distance gives
    plain = wta.candidate_losses(renderer, x, y, params, candidates,
                                 lambda e, t: mrstft_distance(wta.flush_tiny(e), wta.flush_tiny(t), (256, 64),
                                                              reduce=False))
    assert torch.allclose(losses, plain, rtol=1e-6, atol=1e-7) and float(losses.abs().sum()) > 0


def test_hard_min_sends_gradient_only_to_the_winner(tiny_vocab):
    x, y, params, k = _distorted_batch(tiny_vocab, [20.0])
    params[0, k, tiny_vocab.param_slice("Distortion")] += 0.05  # a small error keeps a gradient
    model = FixedModel(torch.zeros(1, tiny_vocab.n_chains), params)
    renderer = ChainRenderer.of_vocabulary(tiny_vocab, 16000)
    result = wta.wta_step(model, renderer, x, y, wta.make_audio_loss((256,)), 4, 0, 0.0)
    result.fit.backward()
    grad = model.params.grad[0]
    assert grad[k].abs().sum() > 0
    assert all(grad[j].abs().sum() == 0 for j in range(tiny_vocab.n_chains) if j != k)


def test_softmin_weights_anneal_from_uniform_to_one_hot():
    losses = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(wta.softmin_weights(losses, 1e6), torch.full((1, 3), 1 / 3))
    assert wta.softmin_weights(losses, 0.0).tolist() == [[1.0, 0.0, 0.0]]
    assert wta.temperature_at(0, 1.0, 0.01, 100) == pytest.approx(1.0)
    assert wta.temperature_at(50, 1.0, 0.01, 100) == pytest.approx(0.1)
    assert wta.temperature_at(100, 1.0, 0.01, 100) == 0.0


def test_select_candidates_keeps_top_k_and_explores_distinct_chains():
    logits = torch.tensor([[0.0, 5.0, 1.0, 4.0, -1.0, 2.0, 3.0, -2.0]]).repeat(20, 1)
    cands = wta.select_candidates(logits, top_k=2, n_explore=3, generator=torch.Generator().manual_seed(0))
    assert cands.shape == (20, 5)
    assert torch.all(cands[:, :2] == torch.tensor([1, 3]))
    for row in cands:
        assert len(set(row.tolist())) == 5
    assert len(set(cands[:, 2:].flatten().tolist())) > 3  # exploration varies
    assert wta.select_candidates(logits, 6, 2).shape == (20, 8)  # naive: every chain


def test_full_chain_vocabulary_has_one_candidate(tiny_vocab):
    vocab = full_chain_vocabulary(tiny_vocab)
    assert vocab.chains == (("Compressor", "Distortion"),) and vocab.n_params == tiny_vocab.n_params


def test_supervised_step_is_zero_for_perfect_predictions(tiny_vocab):
    chain = torch.tensor([1, 3])
    target = torch.rand(2, tiny_vocab.n_params)
    params = torch.rand(2, tiny_vocab.n_chains, tiny_vocab.n_params)
    params[torch.arange(2), chain] = target
    logits = torch.full((2, tiny_vocab.n_chains), -50.0)
    logits[torch.arange(2), chain] = 50.0
    result = supervised_step(FixedModel(logits, params), torch.zeros(2, 10), chain, target,
                             torch.ones(2, tiny_vocab.n_params))
    assert result.loss.item() == pytest.approx(0.0, abs=1e-6)


def test_parsimony_gives_the_win_to_the_smallest_chain_within_tolerance():
    losses = torch.tensor([[0.100, 0.104, 0.300], [0.100, 0.150, 0.300]])
    sizes = torch.tensor([[3, 1, 0], [3, 1, 0]])
    assert wta.parsimonious_winners(losses, sizes, 0.0).tolist() == [0, 0]
    # within 5 %: the 1-effect chain explains row 0 as well as the 3-effect one; row 1's sub-chain is 50 % worse
    assert wta.parsimonious_winners(losses, sizes, 0.05).tolist() == [1, 0]
    candidates = torch.tensor([[7, 2, 0], [7, 2, 0]])
    logits = torch.zeros(2, 8)
    hard = wta.wta_loss(losses, candidates, logits, 0.0, 1.0, sizes, 0.05)
    assert hard.winners.tolist() == [2, 7]
    assert float(hard.fit) == pytest.approx((0.104 + 0.100) / 2)


def test_hard_step_without_the_losers_graphs_gives_the_soft_paths_gradient_at_its_limit(tiny_vocab):
    """temperature 0 (no-grad scoring, winner re-rendered) equals one-hot weights over all candidates' losses."""
    x, y, params, _k = _distorted_batch(tiny_vocab, [14.0, 26.0, 33.0])
    params[:, :, tiny_vocab.param_slice("Distortion")] += 0.04
    loss_fn = wta.make_audio_loss((256, 64))
    renderer = ChainRenderer.of_vocabulary(tiny_vocab, 16000)
    fast = FixedModel(torch.zeros(3, tiny_vocab.n_chains), params.clone())
    hard = wta.wta_step(fast, renderer, x, y, loss_fn, 4, 0, 0.0)
    hard.loss.backward()
    slow = FixedModel(torch.zeros(3, tiny_vocab.n_chains), params.clone())
    _, p = slow(y)
    candidates = torch.arange(tiny_vocab.n_chains).expand(3, -1)
    losses = wta.candidate_losses(renderer, x, y, p, candidates, loss_fn)
    weights = torch.nn.functional.one_hot(losses.detach().argmin(dim=1), tiny_vocab.n_chains).to(losses.dtype)
    ((weights * losses).sum(dim=1).mean()).backward()
    assert hard.winners.tolist() == losses.argmin(dim=1).tolist()
    assert float(hard.fit) == pytest.approx(float((weights * losses).sum(dim=1).mean()), rel=1e-5)
    assert torch.allclose(fast.params.grad, slow.params.grad, rtol=1e-4, atol=1e-7)
    assert float(fast.params.grad.abs().sum()) > 0



@pytest.fixture(scope="module")
def three_vocab():
    """Compressor, Distortion, PeakFilter, chains of 0 to 3 effects (8 chains, canonical order: shared prefixes)."""
    from fxmatch.effects import get_spec
    from fxmatch.vocabulary import ChainVocabulary

    return ChainVocabulary(effects=tuple(get_spec(n) for n in ("Compressor", "Distortion", "PeakFilter")),
                           max_length=3)


def _batch(vocab, shared: bool, batch: int = 3, samples: int = 3000):
    torch.manual_seed(1)
    x = torch.randn(batch, samples) * 0.2
    y = torch.tanh(3 * x) * 0.5
    if shared:  # one param set per effect, as param_sharing "effect" gives
        params = (torch.rand(batch, 1, vocab.n_params) * 0.8 + 0.1).expand(-1, vocab.n_chains, -1).clone()
    else:
        params = torch.rand(batch, vocab.n_chains, vocab.n_params) * 0.8 + 0.1
    return x, y, params


def test_candidate_losses_of_shared_renders_equal_each_chains_own_loss(three_vocab):
    x, y, params = _batch(three_vocab, shared=True)
    renderer = ChainRenderer.of_vocabulary(three_vocab, 16000)
    candidates = torch.tensor([[7, 4, 1, 0], [7, 5, 2, 1], [6, 3, 4, 0]])  # (C,D,P) with (C,D), (C), ...
    losses = wta.candidate_losses(renderer, x, y, params, candidates, wta.make_audio_loss((256, 64)))
    for b in range(3):
        for c in range(4):
            k = int(candidates[b, c])
            direct = mrstft_distance(_alone(three_vocab, k, x[b : b + 1], params[b : b + 1, k]), y[b : b + 1],
                                     (256, 64))
            assert float(losses[b, c]) == pytest.approx(float(direct), rel=2e-5)


def test_fused_spectral_loss_equals_the_torch_distance_and_its_gradient():
    torch.manual_seed(2)
    y = torch.randn(2, 4000)
    x = y[[0, 1, 0]] * 0.6 + 0.3 * torch.randn(3, 4000)
    x[0, :800] = 0.0  # bins below the 1e-7 floor pass no gradient (nor do flushed samples)
    rows = torch.tensor([0, 1, 0])
    loss = wta.make_audio_loss((512, 128, 64))
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fused = loss.from_spectra(a, loss.target_spectra(y), rows)
    plain = mrstft_distance(wta.flush_tiny(b), y[rows], (512, 128, 64), reduce=False)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=0)
    weights = torch.tensor([0.3, 1.0, 2.0])
    (weights * fused).sum().backward()
    (weights * plain).sum().backward()
    assert float((a.grad - b.grad).norm() / b.grad.norm()) < 1e-5 and float(a.grad.abs().sum()) > 0
    assert loss.from_spectra(y, loss.target_spectra(y)).abs().max() == 0  # zero for identical signals


def test_score_proxy_picks_the_winner_and_the_full_loss_fits_it(tiny_vocab):
    x, y, params, _k = _distorted_batch(tiny_vocab, [14.0, 26.0, 33.0])
    params[:, :, tiny_vocab.param_slice("Distortion")] += 0.04
    renderer = ChainRenderer.of_vocabulary(tiny_vocab, 16000)
    full, proxy = wta.make_audio_loss((256, 64)), wta.make_audio_loss((128,))
    model = FixedModel(torch.zeros(3, tiny_vocab.n_chains), params)
    result = wta.wta_step(model, renderer, x, y, full, 4, 0, 0.0, score_loss_fn=proxy)
    candidates = torch.arange(tiny_vocab.n_chains).expand(3, -1)
    on_proxy = wta.candidate_losses(renderer, x, y, params, candidates, proxy)
    on_full = wta.candidate_losses(renderer, x, y, params, candidates, full)
    assert result.winners.tolist() == on_proxy.argmin(dim=1).tolist()
    expected = on_full.gather(1, result.winners[:, None]).mean()
    assert float(result.fit) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_tree_rendered_losses_give_the_chain_by_chain_gradient(three_vocab, shared):
    """Autograd through the shared renders sums each prefix's gradient as rendering every chain on its own does."""
    x, y, params = _batch(three_vocab, shared)
    renderer = ChainRenderer.of_vocabulary(three_vocab, 16000)
    loss = wta.make_audio_loss((256, 64))
    candidates = torch.tensor([[7, 4, 1, 0], [7, 5, 2, 1], [6, 3, 4, 0]])
    weights = torch.rand(3, 4, generator=torch.Generator().manual_seed(3))
    tree = params.clone().requires_grad_(True)
    (weights * wta.candidate_losses(renderer, x, y, tree, candidates, loss)).sum().backward()
    plain = params.clone().requires_grad_(True)
    total = sum(weights[b, c] * mrstft_distance(_alone(three_vocab, int(k), x[b : b + 1], plain[b : b + 1, int(k)]),
                                                y[b : b + 1], (256, 64))
                for b in range(3) for c, k in enumerate(candidates[b]))
    total.backward()
    # with shared params the gradient of a shared prefix lands on one chain's copy of them: compare per effect sums
    per_effect = lambda g: torch.cat([g[:, :, three_vocab.param_slice(n)].sum(dim=1)
                                      for n in ("Compressor", "Distortion", "PeakFilter")], dim=-1)
    if shared:
        torch.testing.assert_close(per_effect(tree.grad), per_effect(plain.grad), rtol=1e-4, atol=1e-6)
    else:
        torch.testing.assert_close(tree.grad, plain.grad, rtol=1e-4, atol=1e-6)
    assert float(tree.grad.abs().sum()) > 0
