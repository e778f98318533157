"""Relearn's Adam must train the MLP exactly as ``torch.optim.Adam`` would: the same weights to
the bit, so replacing it changed no model, history or decision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from relearn.training.adam import Adam
from relearn.training.torch_mlp import build_network


def _train(make_optimizer, learning_rate: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    network = build_network(5, [8, 4], 3)  # with dropout: the same draws in both runs
    optimizer = make_optimizer(network.parameters(), learning_rate)
    data = torch.Generator().manual_seed(1)
    x = torch.randn(640, 5, generator=data)
    y = torch.randint(0, 3, (640,), generator=data)
    loss_fn = nn.CrossEntropyLoss()
    network.train()
    for _ in range(3):
        for batch_x, batch_y in zip(x.split(64), y.split(64), strict=True):
            optimizer.zero_grad()
            loss_fn(network(batch_x), batch_y).backward()
            optimizer.step()
    return [p.detach().clone() for p in network.parameters()]


@pytest.mark.parametrize("learning_rate", [1e-3, 1e-4, 0.05])
def test_the_same_weights_as_torch_adam_to_the_bit(learning_rate: float) -> None:
    ours = _train(lambda params, lr: Adam(params, lr=lr), learning_rate)
    theirs = _train(lambda params, lr: torch.optim.Adam(params, lr=lr), learning_rate)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(ours, _initial(), strict=True))


def _initial() -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [p.detach().clone() for p in build_network(5, [8, 4], 3).parameters()]


def test_a_step_without_gradients_is_refused() -> None:
    optimizer = Adam(build_network(2, [2], 2).parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="call backward first"):
        optimizer.step()
