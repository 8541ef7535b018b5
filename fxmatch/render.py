"""Many chains through the effect twins at once, from normalised params in one `fxmatch.layout.ParamLayout` (torch).

The one batched chain renderer: training scores every candidate chain of a batch of examples
(`ChainRenderer.render_candidates`), capture fits many chains, or many settings of one chain, on one dry excerpt
(`ChainRenderer.render`). Rows are rendered as a tree: depth d holds the d-th effect of each row's chain, and all
nodes of one depth with the same effect run in one twin call. The twins treat the rows of a batch independently, so
each row gets the audio its chain alone would give. With sharing (training), rows whose chains start with the same
effects at the same params on the same dry signal render that prefix once (Compressor -> Chorus and
Compressor -> Chorus -> Reverb of one example); without it (`render`) every row has its own nodes, so each row's
params get their own gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fxmatch.effects import Effect, get_effect
from fxmatch.layout import ParamLayout
from fxmatch.native_rate import phaser_at_rate

if TYPE_CHECKING:
    from fxmatch.vocabulary import ChainNames, ChainVocabulary


class ChainRenderer:
    """The twins of `layout`'s effects, run on chains of them with params in that layout; `chains` are the candidate
    chains `render_candidates` indexes (a vocabulary's), `sample_rate` the rate (Hz) when a call gives none."""

    def __init__(self, layout: ParamLayout, chains: Sequence[Sequence[str]] = (), sample_rate: float | None = None):
        self.layout, self.sample_rate = layout, sample_rate
        self.chains: tuple[ChainNames, ...] = tuple(tuple(c) for c in chains)
        #: the twins by name (one per effect of the layout; every render looks them up here)
        self.effects: dict[str, Effect] = {name: get_effect(name) for name in layout.names}
        #: effects per candidate chain `[n_chains]`
        self.chain_sizes = torch.tensor([len(c) for c in self.chains], dtype=torch.long)

    @classmethod
    def of_vocabulary(cls, vocab: ChainVocabulary, sample_rate: float) -> ChainRenderer:
        """The renderer of `vocab`'s candidate chains, params in its layout, at `sample_rate` Hz (training's)."""
        return cls(vocab.layout, vocab.chains, sample_rate)

    def render(self, x: torch.Tensor, unit: torch.Tensor, chains: Sequence[Sequence[str]], rate: float | None = None,
               native: float | None = None, output_level: bool = False) -> torch.Tensor:
        """Row i of dry `x` (`[rows, samples]`, or `[1, samples]` for all rows) through `chains[i]` with params
        `unit[i]` (`[rows, width]` in [0, 1]) at `rate` Hz: `[rows, samples]`.

        `native`: the rate (Hz) the params are meant at, when it is not `rate` (a Phaser then sweeps the cutoffs it
        sweeps there, `fxmatch.native_rate.phaser_at_rate`); `output_level`: each row is scaled by the layout's
        output-level slot."""
        rows = len(chains)
        sources = [0] * rows if x.shape[0] == 1 else list(range(rows))
        pool, where = self._tree(x, unit, [(sources[i], tuple(c), i, i) for i, c in enumerate(chains)], rate, native)
        out = pool.index_select(0, torch.tensor(where, dtype=torch.long, device=pool.device))
        if output_level:
            gain = self.layout.gain
            if gain is None:
                raise ValueError("this layout has no output-level slot")
            out = out * torch.pow(10.0, self.layout.gain_db(unit[:, gain]) / 20.0)[:, None]
        return out

    def render_candidates(self, x: torch.Tensor, params: torch.Tensor, candidates: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every candidate's audio, each distinct (example, chain prefix, prefix params) rendered once.

        x `[batch, samples]`; params `[batch, n_chains, n_params]` in [0, 1] (chain k's values in the layout);
        candidates `[batch, C]` indices into `chains`. Returns (audio `[n, samples]` of the n distinct renders,
        example `[n]` of each, index `[batch, C]` of each candidate's row in audio). Candidates of one example whose
        chains share a prefix with the same params for it (chains in canonical order with per-effect params) share
        that prefix's render: the same audio as each chain rendered on its own, in fewer, larger calls.
        """
        batch, n_cand = candidates.shape
        n_chains = params.shape[1]
        table = params.reshape(batch * n_chains, params.shape[-1])
        values = table.detach().cpu().numpy()
        rows = [(b, self.chains[k], b * n_chains + k, None) for b, row in enumerate(candidates.tolist()) for k in row]
        pool, where = self._tree(x, table, rows, None, None, values)
        # the distinct renders, in the order the candidates first reach them
        distinct: dict[int, int] = {}
        picked, examples = [], []
        index = torch.empty(batch, n_cand, dtype=torch.long)
        for i, position in enumerate(where):
            if position not in distinct:
                distinct[position] = len(picked)
                picked.append(position)
                examples.append(i // n_cand)
            index[i // n_cand, i % n_cand] = distinct[position]
        audio = pool.index_select(0, torch.tensor(picked, dtype=torch.long, device=x.device))
        return audio, torch.tensor(examples, dtype=torch.long), index

    def _tree(self, x: torch.Tensor, table: torch.Tensor, rows: Sequence[tuple[int, ChainNames, int, Any]],
              rate: float | None, native: float | None, shared: np.ndarray | None = None
              ) -> tuple[torch.Tensor, list[int]]:
        """Render `rows` (row of `x`, chain, row of `table` holding its params, identity) as a tree.

        A node is (parent, effect, key): the key is the row's identity, or with `shared` (`table`'s values as an
        array) the bytes of the effect's params, so rows of one source sharing a prefix at the same params share
        its nodes. Returns (pool `[x rows + nodes, samples]`: x, then every node depth by depth; each row's output
        row in pool)."""
        rate = self.sample_rate if rate is None else rate  # as given: the twins see the caller's int or float
        nodes: dict[tuple[Any, ...], int] = {}
        levels: list[list[tuple[int, int, str]]] = []  # per depth: (parent's row at the depth above, table row, effect)
        leaves: list[tuple[int, int]] = []  # (depth, row at that depth) of each row's output; depth -1: x itself
        for source, chain, param_row, identity in rows:
            node = (-1, source)
            for depth, name in enumerate(chain):
                key = (node, name, identity if shared is None else shared[param_row, self.layout.param_slice(name)]
                       .tobytes())
                if key not in nodes:
                    if depth == len(levels):
                        levels.append([])
                    nodes[key] = len(levels[depth])
                    levels[depth].append((node[1], param_row, name))
                node = (depth, nodes[key])
            leaves.append(node)
        outputs: list[torch.Tensor] = []  # per depth: the outputs of its nodes, in node order
        for depth, level in enumerate(levels):
            source = x if depth == 0 else outputs[depth - 1]
            by_effect: dict[str, list[int]] = {}
            for i, (_, _, name) in enumerate(level):
                by_effect.setdefault(name, []).append(i)
            order, parts = [], []
            for name, members in by_effect.items():
                parents = torch.tensor([level[i][0] for i in members], dtype=torch.long, device=x.device)
                param_rows = torch.tensor([level[i][1] for i in members], dtype=torch.long, device=table.device)
                effect = self.effects[name]
                params = effect.spec.denormalise(table.index_select(0, param_rows)[:, self.layout.param_slice(name)])
                if name == "Phaser" and native is not None and native != rate:
                    params = phaser_at_rate(params, rate, native)
                parts.append(effect.process(source.index_select(0, parents).unsqueeze(1), params, rate).squeeze(1))
                order.extend(members)
            stacked = torch.cat(parts)
            position = torch.empty(len(level), dtype=torch.long, device=x.device)
            position[torch.tensor(order, dtype=torch.long, device=x.device)] = torch.arange(len(level), device=x.device)
            outputs.append(stacked.index_select(0, position))
        offsets = [x.shape[0]]
        for out in outputs:
            offsets.append(offsets[-1] + out.shape[0])
        where = [index if depth < 0 else offsets[depth] + index for depth, index in leaves]
        return torch.cat([x, *outputs]), where

