"""Evaluation: turn (G, D/Q, dataset) into one flat ``dict[str, float]`` with ``eval/`` keys.

Runs in eval mode and inference mode, in batches, on the training device. The representation
the metrics see is Q applied to REAL images: posterior means of the continuous codes and the
categorical codes' argmax (noise dimensions are not part of it, since Q does not infer them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from infogan.config import Config
from infogan.data.base import ImageDataset
from infogan.metrics.categorical import categorical_scores
from infogan.model import Discriminator


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode for the block and restore their previous modes after."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


@torch.inference_mode()
def q_representation(d: Discriminator, images: torch.Tensor, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Q's posterior on real images, in batches.

    Returns:
        ``{"continuous": (N, n_continuous) float32 means, "categorical": (N, n_categorical) int64
        argmax, "probs": list per categorical code of (N, K) float32}``.
    """
    conts, cats, probs = [], [], []
    with eval_mode(d):
        for start in range(0, len(images), batch_size):
            q = d.q(d.features(images[start:start + batch_size]))
            conts.append(q.mean.float().cpu())
            if q.logits:
                cats.append(torch.stack([lg.argmax(1) for lg in q.logits], 1).cpu())
                probs.append([lg.float().softmax(1).cpu() for lg in q.logits])
    n_cat = len(d.n_cat)
    return {
        "continuous": torch.cat(conts).numpy(),
        "categorical": torch.cat(cats).numpy() if cats else np.zeros((len(images), 0), np.int64),
        "probs": [torch.cat([p[i] for p in probs]).numpy() for i in range(n_cat)],
    }


def evaluate(cfg: Config, d: Discriminator, dataset: ImageDataset,
             eval_set: tuple[torch.Tensor, np.ndarray | None] | None = None) -> dict[str, float]:
    """Every metric that applies to this dataset and latent layout, as ``eval/<name>``.

    Args:
        cfg: the run's config (latent layout, eval sizes).
        d: the discriminator whose Q head infers the codes.
        dataset: the training dataset; labelled datasets give categorical accuracy and NMI.
        eval_set: a pre-drawn (images, labels) set, reused across evaluations of one run.
    """
    out: dict[str, float] = {}
    images, labels = eval_set if eval_set is not None else dataset.eval_set(cfg.data.eval_size, cfg.train.seed)
    if labels is not None and cfg.codes.categorical:
        rep = q_representation(d, images)
        out.update({f"eval/{k}": v for k, v in categorical_scores(rep["categorical"][:, 0], labels).items()})
    return out
