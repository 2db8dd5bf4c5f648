"""Losses as pure tensor functions (no modules, no state), reduced per member.

The InfoGAN objective is  min_{G,Q} max_D  V(D, G) - lambda * L_I(G, Q), with the variational
lower bound  L_I = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c)).  Minimising the negative
log-likelihood of the sampled code under Q therefore maximises L_I; ``mi_lower_bound`` turns the
NLLs back into L_I in nats for reporting.

Every loss is a mean over one batch, taken along the batch axis only: inputs may carry leading
axes (the training step's members, ``(K, B, ...)``) and the result keeps them (``(K,)``), so one
function serves one model and K models trained together, and no member's loss mixes with another's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy of logits (..., B) against a constant label -> (...)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(-1)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """D's loss on logits (..., B) of real and generated images, a mean over the batch -> (...).

    ``bce``: -log D(x) - log(1 - D(G(z))).  ``lsgan``: (D(x) - 1)^2 + D(G(z))^2 on raw outputs.
    """
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "bce":
        return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1).pow(2).mean(-1) + fake_logits.pow(2).mean(-1))
    raise ValueError(f"unknown GAN loss {kind!r}; allowed is 'bce' or 'lsgan'")


def g_loss(fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """G's loss on logits (..., B): the non-saturating -log D(G(z)) (``bce``) or (D(G(z)) - 1)^2 (``lsgan``)."""
    fake_logits = fake_logits.float()
    if kind == "bce":
        return _bce(fake_logits, 1.0)
    if kind == "lsgan":
        return 0.5 * (fake_logits - 1).pow(2).mean(-1)
    raise ValueError(f"unknown GAN loss {kind!r}; allowed is 'bce' or 'lsgan'")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (..., B, n) against class indices (..., B) -> (...)."""
    ce = F.cross_entropy(logits.float().flatten(0, -2), targets.flatten(), reduction="none")
    return ce.view(targets.shape).mean(-1)


def categorical_nll(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Sum over categorical codes of the cross-entropy of Q's logits against the sampled codes.

    Args:
        logits: one (..., B, K_i) tensor per categorical code.
        targets: (..., B, n_categorical) int64 sampled class indices.
    Returns:
        (...), nats: 0 for a perfect Q, sum_i ln K_i for a uniform Q.
    """
    total = targets.new_zeros(targets.shape[:-2], dtype=torch.float32)
    for i, lg in enumerate(logits):
        total = total + cross_entropy(lg, targets[..., i])
    return total


def gaussian_nll(mean: torch.Tensor, target: torch.Tensor, log_std: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian negative log-likelihood of continuous codes (..., B, n), summed over codes, mean over
    the batch -> (...).

    With ``log_std=None`` the std is fixed at 1 (the official code; the loss is MSE/2 + const).
    With a learned ``log_std`` (the paper) it is clamped to [-5, 2] for numerical safety.
    Returns nats, including the 0.5 ln(2 pi) constant so the value is a true NLL.
    """
    mean, target = mean.float(), target.float()
    if log_std is None:
        per = 0.5 * (target - mean).pow(2) + _HALF_LOG_2PI
    else:
        log_std = log_std.float().clamp(-5.0, 2.0)
        per = 0.5 * ((target - mean) * torch.exp(-log_std)).pow(2) + log_std + _HALF_LOG_2PI
    return per.sum(-1).mean(-1)


def mi_lower_bound(nll: torch.Tensor | float, entropy: float) -> float:
    """L_I = H(c) - NLL in nats (the variational lower bound on I(c; G(z, c)))."""
    return float(entropy - float(nll))
