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
    assert images.min() >= -1 and images.max() <= 1  # [-1, 1] outside the networks, whatever model.output
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


@pytest.mark.parametrize("arch", ["mnist", "conv"])
def test_g_block_order_is_the_official_codes(arch: str) -> None:
    cfg = Config.from_flat({"model.image_size": 32, "model.arch": arch, "model.width": 0.25, "model.leak": 0.2})
    bn_act, _ = build(cfg.codes, cfg.model.model_copy(update={"g_blocks": "bn_act"}), False)
    act_bn, _ = build(cfg.codes, cfg.model.model_copy(update={"g_blocks": "act_bn"}), False)
    kinds = lambda seq: [type(m).__name__ for m in seq]  # noqa: E731
    # openai/InfoGAN: linear -> BN -> ReLU; InfoGAN-CR: linear -> ReLU -> BN, deconv -> lrelu(0.2) -> BN.
    assert kinds(bn_act.fc) == ["Linear", "BatchNorm1d", "ReLU"] * 2
    assert kinds(act_bn.fc) == ["Linear", "ReLU", "BatchNorm1d"] * 2
    assert kinds(bn_act.deconv)[:3] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"]
    assert kinds(act_bn.deconv)[:3] == ["ConvTranspose2d", "LeakyReLU", "BatchNorm2d"]
    assert act_bn.deconv[1].negative_slope == 0.2
    assert kinds(act_bn.deconv)[-1] == kinds(bn_act.deconv)[-1] == "ConvTranspose2d"  # the output map is in forward


def test_sigmoid_output_means_the_networks_see_pixels_in_0_1() -> None:
    cfg = Config.from_flat({"model.image_size": 32, "model.width": 0.25, "model.output": "sigmoid"})
    torch.manual_seed(0)
    g, d = build(cfg.codes, cfg.model, False)
    tanh_model = cfg.model.model_copy(update={"output": "tanh"})
    g_tanh, d_tanh = build(cfg.codes, tanh_model, False)
    g_tanh.load_state_dict(g.state_dict())
    d_tanh.load_state_dict(d.state_dict())
    g.eval(), g_tanh.eval(), d.eval(), d_tanh.eval()
    z = torch.rand(6, cfg.codes.latent_dim) * 2 - 1
    # G: 2·sigmoid(a) − 1 outside (the same function as tanh(a / 2)), so a blank image is −1 either way.
    logits = g.deconv(g.fc(z).view(-1, g.channels, g.base, g.base))
    torch.testing.assert_close(g(z), 2 * torch.sigmoid(logits) - 1)
    torch.testing.assert_close(g_tanh(z), torch.tanh(logits))
    # D reads (x + 1) / 2: a background of −1 is 0 inside, as in the official codes' [0, 1] data.
    x = torch.where(torch.rand(6, 1, 32, 32) > 0.8, 1.0, -1.0)
    torch.testing.assert_close(d.features(x), d_tanh.features((x + 1) / 2))
