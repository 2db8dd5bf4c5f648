"""Loss functions on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from infogan import losses


def test_perfect_q_gives_zero_categorical_term() -> None:
    targets = torch.tensor([[0], [3], [9], [5]])
    logits = torch.full((4, 10), -1e4)
    logits[torch.arange(4), targets[:, 0]] = 1e4
    assert losses.categorical_nll([logits], targets).item() == pytest.approx(0.0, abs=1e-6)


def test_uniform_q_gives_ln_k_per_code() -> None:
    targets = torch.tensor([[1, 0], [2, 1], [0, 2]])
    value = losses.categorical_nll([torch.zeros(3, 10), torch.zeros(3, 3)], targets).item()
    assert value == pytest.approx(math.log(10) + math.log(3), rel=1e-6)


def test_l_i_is_h_c_for_a_perfect_q_and_zero_for_a_uniform_q() -> None:
    # Two codes, K = 10 and 3: H(c) = ln 10 + ln 3. A perfect Q attains the bound L_I = H(c);
    # a Q that knows nothing (uniform posterior) has L_I = 0.
    h = math.log(10) + math.log(3)
    targets = torch.tensor([[0, 2], [7, 0], [9, 1], [4, 1]])
    perfect = [torch.full((4, k), -1e4).scatter(1, targets[:, i:i + 1], 1e4) for i, k in enumerate((10, 3))]
    assert losses.mi_lower_bound(losses.categorical_nll(perfect, targets), h) == pytest.approx(h, abs=1e-6)
    uniform = [torch.zeros(4, 10), torch.zeros(4, 3)]
    assert losses.mi_lower_bound(losses.categorical_nll(uniform, targets), h) == pytest.approx(0.0, abs=1e-6)
    # Confidently wrong: the bound goes negative (it is a lower bound, not an estimate of I).
    wrong = [torch.full((4, k), 1e2).scatter(1, targets[:, i:i + 1], -1e2) for i, k in enumerate((10, 3))]
    assert losses.mi_lower_bound(losses.categorical_nll(wrong, targets), h) < -100


def test_fixed_std_gaussian_nll_is_half_squared_error_plus_constant() -> None:
    mean = torch.tensor([[0.0, 1.0], [0.5, -0.5]])
    target = torch.tensor([[1.0, 1.0], [0.5, 0.5]])
    expected = (0.5 * (1 + 0 + 0 + 1) + 4 * 0.5 * math.log(2 * math.pi)) / 2  # summed over codes, mean over batch
    assert losses.gaussian_nll(mean, target).item() == pytest.approx(expected, rel=1e-6)


def test_learned_std_matches_torch_normal_log_prob() -> None:
    gen = torch.Generator().manual_seed(1)
    mean, target, log_std = (torch.randn(5, 3, generator=gen) for _ in range(3))
    log_std = log_std.clamp(-2, 1)
    reference = -torch.distributions.Normal(mean, log_std.exp()).log_prob(target).sum(1).mean()
    assert losses.gaussian_nll(mean, target, log_std).item() == pytest.approx(reference.item(), rel=1e-5)


def test_no_continuous_codes_gives_zero() -> None:
    assert losses.gaussian_nll(torch.zeros(4, 0), torch.zeros(4, 0)).item() == 0.0


def test_gan_losses_at_indifferent_discriminator() -> None:
    zeros = torch.zeros(8)
    assert losses.d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert losses.g_loss(zeros).item() == pytest.approx(math.log(2), rel=1e-6)
    assert losses.d_loss(torch.ones(4), torch.zeros(4), "lsgan").item() == pytest.approx(0.0)
    assert losses.g_loss(torch.zeros(4), "lsgan").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        losses.g_loss(zeros, "wgan")
