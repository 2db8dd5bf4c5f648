"""The evaluation's encoder: a channels_last copy on CPU that leaves the training model alone."""

from __future__ import annotations

import numpy as np
import torch

from infogan.config import Config
from infogan.metrics.suite import codes_of, inference_model
from infogan.model import build


def test_inference_copy_encodes_like_the_training_model_and_leaves_it_untouched() -> None:
    cfg = Config.from_flat({"model.image_size": 32, "model.width": 0.25, "codes.categorical": (4,),
                            "codes.n_continuous": 3})
    _, d = build(cfg.codes, cfg.model, learned_std=False)
    d.train()
    images = torch.rand(40, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fast = inference_model(d)
    assert fast is not d and not fast.training
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # The training model keeps its mode and its contiguous weights (channels_last training
    # convolutions are several times slower on CPU).
    assert d.training and all(p.is_contiguous() for p in d.parameters())
    plain, quick = codes_of(d)(images), codes_of(fast)(images)
    assert plain.shape == quick.shape == (40, 4)  # 3 continuous means + 1 categorical argmax
    np.testing.assert_allclose(quick[:, :3], plain[:, :3], rtol=1e-4, atol=1e-5)
    assert d.training  # codes_of evaluated in eval mode and restored the mode
