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


def test_each_loss_reduces_per_member_over_its_own_batch_only() -> None:
    # The step trains K members at once: each loss keeps the leading (member) axes and averages over
    # the batch axis alone, so member i's loss is the loss of its own (B, ...) batch.
    gen = torch.Generator().manual_seed(0)
    k, b = 3, 8
    real, fake = torch.randn(k, b, generator=gen), torch.randn(k, b, generator=gen)
    logits = [torch.randn(k, b, 10, generator=gen), torch.randn(k, b, 3, generator=gen)]
    targets = torch.stack([torch.randint(10, (k, b), generator=gen), torch.randint(3, (k, b), generator=gen)], -1)
    mean, target, log_std = (torch.randn(k, b, 4, generator=gen) * 3 for _ in range(3))
    for kind in ("bce", "lsgan"):
        torch.testing.assert_close(losses.d_loss(real, fake, kind),
                                   torch.stack([losses.d_loss(real[i], fake[i], kind) for i in range(k)]))
        torch.testing.assert_close(losses.g_loss(fake, kind), torch.stack([losses.g_loss(fake[i], kind) for i in range(k)]))
    torch.testing.assert_close(losses.categorical_nll(logits, targets), torch.stack(
        [losses.categorical_nll([lg[i] for lg in logits], targets[i]) for i in range(k)]))
    assert torch.equal(losses.categorical_nll([], targets[..., :0]), torch.zeros(k))
    for std in (None, log_std):
        torch.testing.assert_close(losses.gaussian_nll(mean, target, std), torch.stack(
            [losses.gaussian_nll(mean[i], target[i], None if std is None else std[i]) for i in range(k)]))
    # ... and changing one member's inputs changes only that member's loss.
    moved = real.clone()
    moved[1] += 5.0
    changed = losses.d_loss(moved, fake) != losses.d_loss(real, fake)
    assert changed.tolist() == [False, True, False]
