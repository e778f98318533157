"""Adam for the MLP's training loop, without ``torch.optim``.

``torch.optim.Adam`` computes exactly this update, but its first optimizer imports
``torch._dynamo`` and sympy (about 70 MB of resident memory in the training step) and wraps
every ``step`` in dynamo's "disable" hook, which costs more than the update of a network this
small. This class makes the same arithmetic in the same order as torch's single-tensor Adam
(``amsgrad``, weight decay and ``maximize`` off), so a fit gives the same weights to the bit
(``tests/unit/test_adam.py`` compares them), in about 0.6x the time per mini-batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from collections.abc import Iterable

BETAS = (0.9, 0.999)
EPS = 1e-8


class Adam:
    """Adam (Kingma & Ba) over ``params`` at learning rate ``lr``, torch's defaults otherwise.

    The ``torch._foreach_*`` kernels are the ones ``torch.optim.Adam(foreach=True)`` runs: one
    call per operation for all parameters instead of one per parameter."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        self.params = list(params)
        self.lr = lr
        self._exp_avgs = [torch.zeros_like(p) for p in self.params]
        self._exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        # A float32 tensor, as torch keeps it: the bias corrections read its value.
        self._step = torch.tensor(0.0)

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from the parameters' ``grad`` (every parameter must have one)."""
        beta1, beta2 = BETAS
        grads = [p.grad for p in self.params]
        if any(grad is None for grad in grads):
            raise ValueError("Adam.step needs a gradient for every parameter: call backward first")
        self._step += 1
        step = self._step.item()
        torch._foreach_lerp_(self._exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(self._exp_avg_sqs, beta2)
        torch._foreach_addcmul_(self._exp_avg_sqs, grads, grads, value=1 - beta2)
        step_size = self.lr / (1 - beta1**step)
        denominators = torch._foreach_sqrt(self._exp_avg_sqs)
        torch._foreach_div_(denominators, (1 - beta2**step) ** 0.5)
        torch._foreach_add_(denominators, EPS)
        torch._foreach_addcdiv_(self.params, self._exp_avgs, denominators, value=-step_size)
