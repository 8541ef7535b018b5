"""The reference the batched chain renderer (`fxmatch.render`) is checked against: one chain at a time."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fxmatch.effects.chain import Chain
from fxmatch.layout import ParamLayout


def render_alone(layout: ParamLayout, chain: Sequence[str], x: torch.Tensor, unit: torch.Tensor,
                 sample_rate: float) -> torch.Tensor:
    """`x` `[n, samples]` through `chain` on its own (`fxmatch.effects.chain.Chain`), params `unit` `[n, width]` in
    `layout`'s vector: `[n, samples]`."""
    columns = [i for name in chain for i in range(*layout.param_slice(name).indices(layout.width))]
    own = unit.index_select(-1, torch.tensor(columns, dtype=torch.long))
    return Chain(chain).process_normalised(x.unsqueeze(1), own, sample_rate).squeeze(1)
