"""Latent sampling, G's input layout and traversal grids."""

from __future__ import annotations

import math

import torch

from infogan import codes
from infogan.config import Config


def _cfg(**kw: object) -> Config:
    return Config.from_flat({"codes.noise_dim": 3, "codes.categorical": (4, 2), "codes.n_continuous": 2, **kw})


def test_assemble_layout_is_noise_onehots_continuous() -> None:
    cfg = _cfg().codes
    latent = codes.sample(cfg, 16, torch.Generator().manual_seed(0))
    x = codes.assemble(cfg, latent)
    assert x.shape == (16, 3 + 4 + 2 + 2)
    assert torch.equal(x[:, :3], latent.noise)
    assert torch.equal(x[:, 3:7].argmax(1), latent.categorical[:, 0])
    assert torch.equal(x[:, 7:9].argmax(1), latent.categorical[:, 1])
    assert torch.equal(x[:, 3:9].sum(1), torch.full((16,), 2.0))
    assert torch.equal(x[:, 9:], latent.continuous)


def test_priors_ranges() -> None:
    cfg = _cfg().codes
    latent = codes.sample(cfg, 4000, torch.Generator().manual_seed(0))
    assert latent.continuous.min() >= -1 and latent.continuous.max() <= 1
    assert abs(latent.continuous.mean()) < 0.05
    assert set(latent.categorical[:, 0].tolist()) == {0, 1, 2, 3}
    normal = codes.sample(_cfg(**{"codes.noise_dist": "normal"}).codes, 4000, torch.Generator().manual_seed(0))
    assert normal.noise.abs().max() > 1.5  # Gaussian tails, unlike Unif(-1, 1)


def test_entropies() -> None:
    h = codes.entropies(_cfg().codes)
    assert math.isclose(h["h_cat"], math.log(4) + math.log(2))
    assert math.isclose(h["h_cont"], 2 * math.log(2))


def test_traversal_rows_are_categories_and_columns_sweep_one_code() -> None:
    cfg = _cfg().codes
    t = codes.traversal(cfg, cont_index=1, n_steps=5, span=2.0)
    assert t.noise.shape == (4 * 5, 3)
    assert torch.equal(t.categorical[:, 0], torch.arange(4).repeat_interleave(5))
    assert torch.allclose(t.continuous[:5, 1], torch.linspace(-2, 2, 5))
    assert torch.all(t.continuous[:, 0] == 0)
    assert torch.all(t.noise == t.noise[0])  # noise fixed across the whole grid


def test_cr_pairs_share_the_noise_and_exactly_the_selected_code() -> None:
    cfg = _cfg().codes  # Cat(4), Cat(2), 2 continuous: 4 codes
    first, second, shared = codes.sample_pairs(cfg, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(first.noise, second.noise)
    assert set(shared.tolist()) == {0, 1, 2, 3}
    same_cat = first.categorical == second.categorical  # (n, 2)
    same_cont = first.continuous == second.continuous  # (n, 2)
    same = torch.cat([same_cat, same_cont], dim=1)
    rows = torch.arange(len(shared))
    assert same[rows, shared].all()  # the selected code is always shared
    # The other codes are drawn anew: continuous ones never coincide, a Cat(K) code by chance 1/K.
    others_cont = same_cont.clone()
    for j in range(2):
        others_cont[shared == 2 + j, j] = False
    assert not others_cont.any()
    chance = same_cat[:, 0][shared != 0].float().mean()
    assert 0.2 < chance < 0.3  # 1/4
