"""Evaluation: turn (G, D/Q, dataset) into one flat ``dict[str, float]`` with ``eval/`` keys.

Runs in eval mode and inference mode, in batches, on the training device. The representation
the metrics see is Q applied to REAL images: the posterior means of the continuous codes, then
the argmax of each categorical code (noise dimensions are not part of it: Q does not infer them).

On a dataset with ground-truth factors (dSprites), MIG, DCI, SAP and modularity/explicitness
share ONE sample of ``eval.num_points + eval.num_test`` rendered and encoded points (each metric's
standalone ``compute_*`` wrapper would draw its own); FactorVAE and BetaVAE draw their own
fixed-factor batches. FID compares ``eval.fid_samples`` generated images with as many real ones
in the feature space of the dataset's cached feature network (``infogan/metrics/fid.py``); the
real images' features are extracted at the first evaluation and kept for the later ones.
Every number is computed with a fixed seed, so evaluations at different steps differ only
through the model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from infogan import codes as latent_codes
from infogan.config import Config
from infogan.data.base import GroundTruthDataset, ImageDataset
from infogan.metrics.beta_vae import compute_beta_vae
from infogan.metrics.categorical import categorical_scores
from infogan.metrics.dci import dci_score
from infogan.metrics.factor_vae import compute_factor_vae
from infogan.metrics.fid import FIDReference, inception_feature_net, load_or_train_feature_net
from infogan.metrics.mig import mig_score
from infogan.metrics.modularity import modularity_score
from infogan.metrics.sap import sap_score
from infogan.model import Discriminator, Generator

EVAL_SEED = 20_161_205  # fixed: every evaluation of every run sees the same points


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
        ``{"continuous": (N, n_continuous) float32 means, "categorical": (N, n_categorical) int64 argmax}``.
    """
    conts, cats = [], []
    with eval_mode(d):
        for start in range(0, len(images), batch_size):
            q = d.q(d.features(images[start:start + batch_size]))
            conts.append(q.mean.float().cpu())
            cats.append(torch.stack([lg.argmax(1) for lg in q.logits], 1).cpu() if q.logits
                        else torch.zeros(len(q.mean), 0, dtype=torch.long))
    return {"continuous": torch.cat(conts).numpy(), "categorical": torch.cat(cats).numpy()}


def inference_model(d: Discriminator) -> Discriminator:
    """The discriminator/Q to encode many images with: on CPU an eval-mode channels_last copy.

    oneDNN's CPU inference convolutions run ~2.5x faster with channels_last weights (measured
    here: 18k -> 45k img/s at 32 px, 6k -> 16k img/s at 64 px), while its training convolutions
    in that layout are several times slower, so the training model stays contiguous and
    evaluation encodes with a copy (a few MB, once per evaluation). On CUDA the training model is
    channels_last already and is returned as is.
    """
    if next(d.parameters()).device.type != "cpu":
        return d
    return copy.deepcopy(d).eval().to(memory_format=torch.channels_last)


def codes_of(d: Discriminator):
    """The representation function the disentanglement metrics call: images -> (n, codes)."""

    def representation(images: torch.Tensor) -> np.ndarray:
        rep = q_representation(d, images)
        return np.concatenate([rep["continuous"], rep["categorical"].astype(np.float32)], axis=1)

    return representation


@torch.inference_mode()
def generate(cfg: Config, g: Generator, n: int, device: torch.device, seed: int = EVAL_SEED,
             batch_size: int = 500) -> torch.Tensor:
    """n generated images (n, C, H, W) in [-1, 1] from fixed latents."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    with eval_mode(g):
        for start in range(0, n, batch_size):
            latent = latent_codes.sample(cfg.codes, min(batch_size, n - start), gen).to(device)
            out.append(g(latent_codes.assemble(cfg.codes, latent)).float())
    return torch.cat(out)


def disentanglement(cfg: Config, d: Discriminator, data: GroundTruthDataset) -> dict[str, float]:
    """MIG, FactorVAE, BetaVAE, DCI, SAP, modularity/explicitness of Q's codes on ``data``."""
    ec = cfg.eval
    represent = codes_of(d)
    rng = np.random.default_rng(EVAL_SEED)
    n_train, n_test = ec.num_points, ec.num_test
    factors = data.sample_factors(n_train + n_test, rng)
    codes = np.concatenate([represent(data.images_from_factors(factors[i:i + 500]))
                            for i in range(0, len(factors), 500)])
    tr = (codes[:n_train], factors[:n_train])
    te = (codes[n_train:], factors[n_train:])
    out: dict[str, float] = {}
    out.update(mig_score(*tr))
    out.update(dci_score(*tr, *te, rng=np.random.default_rng(EVAL_SEED + 1)))
    out.update(sap_score(*tr, *te))
    out.update(modularity_score(*tr, *te))
    sizes = {"num_train": ec.num_votes_train, "num_eval": ec.num_votes_eval, "batch_size": ec.vote_batch}
    out.update(compute_factor_vae(represent, data, np.random.default_rng(EVAL_SEED + 2),
                                  num_variance_estimate=n_train, **sizes))
    out.update(compute_beta_vae(represent, data, np.random.default_rng(EVAL_SEED + 3), **sizes))
    return out


class Evaluator:
    """Holds what every evaluation of one run reuses: the labelled eval set, the FID feature
    network and the real images' FID statistics. ``evaluator(g, d)`` returns ``eval/`` metrics.
    """

    def __init__(self, cfg: Config, dataset: ImageDataset, device: torch.device):
        self.cfg, self.dataset, self.device = cfg, dataset, device
        self.eval_set = dataset.eval_set(cfg.data.eval_size, cfg.train.seed)
        self.feature_net: nn.Module | None = None
        self.feature_net_id = ""
        self.fid_reference: FIDReference | None = None

    def prepare_fid(self) -> FIDReference:
        """Load (or train and cache) the feature net and extract the real images' features, once.

        Called by the first evaluation with FID on; callers may call it earlier to keep that
        one-off cost out of a timed evaluation.
        """
        if self.fid_reference is None:
            ec = self.cfg.eval
            if ec.feature_net == "inception":
                self.feature_net, self.feature_net_id = inception_feature_net(ec.inception_weights)
            else:
                self.feature_net, self.feature_net_id = load_or_train_feature_net(
                    self.dataset, ec.cache_dir, ec.fid_net_steps)
            real = self.dataset.eval_set(ec.fid_samples, EVAL_SEED)[0]
            self.fid_reference = FIDReference(self.feature_net, real)
        return self.fid_reference

    def __call__(self, g: Generator, d: Discriminator) -> dict[str, float]:
        cfg, out = self.cfg, {}
        t0 = time.perf_counter()
        images, labels = self.eval_set
        q_net = inference_model(d)
        if labels is not None and cfg.codes.categorical:
            rep = q_representation(q_net, images)
            out.update(categorical_scores(rep["categorical"][:, 0], labels))
        if cfg.eval.disentanglement and isinstance(self.dataset, GroundTruthDataset):
            out.update(disentanglement(cfg, q_net, self.dataset))
        if cfg.eval.fid:
            reference = self.prepare_fid()
            out["fid"] = reference(generate(cfg, g, reference.num_real, self.device))
        out["seconds"] = time.perf_counter() - t0
        return {f"eval/{k}": float(v) for k, v in out.items()}
