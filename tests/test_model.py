"""Network output shapes at every image size and architecture."""

from __future__ import annotations

import pytest
import torch

from infogan.config import Config
from infogan.model import build


@pytest.mark.parametrize(("size", "arch"), [(28, "mnist"), (32, "mnist"), (64, "mnist"), (32, "conv"), (64, "conv")])
@pytest.mark.parametrize("learned_std", [False, True])
def test_shapes(size: int, arch: str, learned_std: bool) -> None:
    cfg = Config.from_flat({
        "model.image_size": size, "model.arch": arch, "model.width": 0.25,
        "codes.noise_dim": 7, "codes.categorical": (10, 3), "codes.n_continuous": 4,
    })
    g, d = build(cfg.codes, cfg.model, learned_std)
    z = torch.randn(5, cfg.codes.latent_dim)
    images = g(z)
    assert images.shape == (5, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1  # tanh output
    logit, q = d(images)
    assert logit.shape == (5,)
    assert [lg.shape for lg in q.logits] == [(5, 10), (5, 3)]
    assert q.mean.shape == (5, 4)
    assert (q.log_std is not None) == learned_std
    if learned_std:
        assert q.log_std.shape == (5, 4)


def test_paper_mnist_layer_sizes_at_full_width() -> None:
    cfg = Config.from_flat({"model.image_size": 28, "codes.noise_dim": 62, "codes.categorical": (10,),
                            "codes.n_continuous": 2})
    g, d = build(cfg.codes, cfg.model, False)
    assert g.fc[0].in_features == 74 and g.fc[0].out_features == 1024
    assert g.fc[3].out_features == 7 * 7 * 128
    convs = [m for m in d.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128]
    assert d.q_head[0].out_features == 128


def test_width_multiplier_shrinks_parameters() -> None:
    small = Config.from_flat({"model.width": 0.25})
    full = Config()
    n = [sum(p.numel() for p in m.parameters()) for c in (small, full) for m in build(c.codes, c.model, False)]
    assert n[0] < n[2] and n[1] < n[3]
