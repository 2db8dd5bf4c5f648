"""The evaluation suite: turn (G, D/Q, dataset) into one flat ``dict[str, float]`` with ``eval/`` keys.

Runs in eval mode and inference mode, in batches, on the training device. The representation
the metrics see is Q applied to REAL images: the posterior means of the continuous codes, then
the argmax of each categorical code (noise dimensions are not part of it: Q does not infer them).

On a dataset with ground-truth factors (dSprites), MIG, DCI, SAP and modularity/explicitness
share ONE sample of ``eval.num_points + eval.num_test`` rendered and encoded points (each metric's
standalone ``compute_*`` wrapper would draw its own); FactorVAE and BetaVAE draw their own
fixed-factor batches. FID compares ``eval.fid_samples`` generated images with as many real ones
in the feature space of the dataset's cached feature network (``infogan/metrics/fid.py``); the
real images' features are extracted at the first evaluation and kept for the later ones.
Every number is computed with a fixed seed, so evaluations of the same stage at different steps
differ only through the model.

Staged evaluation (``eval.intermediate`` / ``eval.final``): an evaluation before a run's last
step computes only the intermediate families (by default categorical accuracy, MIG on at most
``eval.intermediate_points`` points and FID on ``eval.intermediate_fid_samples`` images: what a
scheduler's rungs and the learning curves need); the last step, and ``python -m infogan.evaluate``
on any saved checkpoint, compute the final families at full sizes.
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
from infogan import metric_catalogue
from infogan.config import GROUND_TRUTH_FAMILIES, METRIC_FAMILIES, Config, metric_set
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
# What each family reports (``eval/<name>``), beside ``eval/seconds``: known before a run starts, so
# a sweep can refuse an objective no trial would report (tests hold it to what the metrics return).
# The names are declared once, with their directions, in infogan.metric_catalogue.
FAMILY_METRICS: dict[str, tuple[str, ...]] = {family: metric_catalogue.family_metrics(family)
                                              for family in METRIC_FAMILIES}


def metric_families(cfg: Config, final: bool, ground_truth: bool) -> frozenset[str]:
    """The metric families an evaluation computes: the ``eval.final`` (``final``) or
    ``eval.intermediate`` families, less those a dataset without factors (``ground_truth``)
    cannot have and the categorical family without a categorical code."""
    ec = cfg.eval
    chosen = metric_set(ec.final if final else ec.intermediate)
    if not ground_truth:
        chosen -= GROUND_TRUTH_FAMILIES
    if not cfg.codes.categorical:
        chosen -= {"categorical"}
    return chosen


def metric_names(cfg: Config, final: bool, ground_truth: bool) -> frozenset[str]:
    """The ``eval/`` keys an evaluation of a run with ``cfg`` returns (see ``metric_families``)."""
    names = {name for family in metric_families(cfg, final, ground_truth) for name in FAMILY_METRICS[family]}
    return frozenset({"eval/seconds", *(f"eval/{name}" for name in names)})


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


def disentanglement(cfg: Config, d: Discriminator, data: GroundTruthDataset,
                    families: frozenset[str] = frozenset(METRIC_FAMILIES),
                    num_points: int | None = None) -> dict[str, float]:
    """The ground-truth metrics of Q's codes on ``data``: those of ``families`` among MIG,
    FactorVAE, BetaVAE, DCI, SAP, modularity/explicitness.

    Args:
        cfg: sizes under ``eval.*``.
        d: the discriminator whose Q head encodes.
        data: a dataset with ground-truth factors.
        families: which metric families to compute.
        num_points: training points of the point-sample metrics (default ``eval.num_points``).
    """
    ec = cfg.eval
    represent = codes_of(d)
    rng = np.random.default_rng(EVAL_SEED)
    out: dict[str, float] = {}
    n_train = num_points or ec.num_points
    # MIG may have its own, larger sample (InfoGAN-CR's protocol: 73,728 images); at reduced
    # (intermediate) sizes it is capped like the rest.
    n_mig = min(ec.mig_points, num_points) if num_points and ec.mig_points else (ec.mig_points or n_train)
    point_families = families & {"mig", "dci", "sap", "modularity"}
    if point_families:
        # Held-out points only for the metrics that test a classifier; the MIG-only draw of an
        # intermediate evaluation is smaller, so it sees other points than a final one.
        classifier_metrics = bool(point_families & {"dci", "sap", "modularity"})
        n_test = ec.num_test if classifier_metrics else 0
        n_first = max(n_train if classifier_metrics else 0, n_mig if "mig" in families else 0)
        factors = data.sample_factors(n_first + n_test, rng)
        codes = np.concatenate([represent(data.images_from_factors(factors[i:i + 500]))
                                for i in range(0, len(factors), 500)])
        tr = (codes[:n_train], factors[:n_train])
        te = (codes[n_first:], factors[n_first:])
        if "mig" in families:
            out.update(mig_score(codes[:n_mig], factors[:n_mig]))
        if "dci" in families:
            out.update(dci_score(*tr, *te, rng=np.random.default_rng(EVAL_SEED + 1), model=ec.dci_model))
        if "sap" in families:
            out.update(sap_score(*tr, *te))
        if "modularity" in families:
            out.update(modularity_score(*tr, *te))
    sizes = {"num_train": ec.num_votes_train, "num_eval": ec.num_votes_eval, "batch_size": ec.vote_batch}
    if "factor_vae" in families:
        out.update(compute_factor_vae(represent, data, np.random.default_rng(EVAL_SEED + 2),
                                      num_variance_estimate=num_points or ec.num_points, **sizes))
    if "beta_vae" in families:
        out.update(compute_beta_vae(represent, data, np.random.default_rng(EVAL_SEED + 3), **sizes))
    return out


class Evaluator:
    """Holds what every evaluation of one run reuses: the labelled eval set, the FID feature
    network and the real images' FID statistics. ``evaluator(g, d, final)`` returns ``eval/``
    metrics: the ``eval.final`` families at full sizes when ``final``, else the
    ``eval.intermediate`` families at their reduced sizes (staged evaluation).
    """

    def __init__(self, cfg: Config, dataset: ImageDataset, device: torch.device):
        self.cfg, self.dataset, self.device = cfg, dataset, device
        self.eval_set = dataset.eval_set(cfg.data.eval_size, cfg.train.seed)
        self.feature_net: nn.Module | None = None
        self.feature_net_id = ""
        self._fid_references: dict[int, FIDReference] = {}

    def families(self, final: bool) -> frozenset[str]:
        """The metric families an evaluation of this run computes (``metric_families``)."""
        return metric_families(self.cfg, final, isinstance(self.dataset, GroundTruthDataset))

    def fid_samples(self, final: bool) -> int:
        ec = self.cfg.eval
        return ec.fid_samples if final else min(ec.fid_samples, ec.intermediate_fid_samples)

    def prepare_fid(self, final: bool = True) -> FIDReference:
        """Load (or train and cache) the feature net and extract the real images' features, once
        per sample size.

        Called by the first evaluation with FID on; callers may call it earlier to keep that
        one-off cost out of a timed evaluation.
        """
        ec = self.cfg.eval
        if self.feature_net is None:
            if ec.feature_net == "inception":
                self.feature_net, self.feature_net_id = inception_feature_net(ec.inception_weights)
            else:
                self.feature_net, self.feature_net_id = load_or_train_feature_net(
                    self.dataset, ec.cache_dir, ec.fid_net_steps)
        n = self.fid_samples(final)
        if n not in self._fid_references:
            real = self.dataset.eval_set(n, EVAL_SEED)[0]
            self._fid_references[n] = FIDReference(self.feature_net, real)
        return self._fid_references[n]

    def __call__(self, g: Generator, d: Discriminator, final: bool = True) -> dict[str, float]:
        cfg, out = self.cfg, {}
        families = self.families(final)
        t0 = time.perf_counter()
        images, labels = self.eval_set
        q_net = inference_model(d)
        if labels is not None and "categorical" in families:
            rep = q_representation(q_net, images)
            out.update(categorical_scores(rep["categorical"][:, 0], labels))
        if families & GROUND_TRUTH_FAMILIES:
            assert isinstance(self.dataset, GroundTruthDataset)
            points = None if final else min(cfg.eval.num_points, cfg.eval.intermediate_points)
            out.update(disentanglement(cfg, q_net, self.dataset, families, points))
        if "fid" in families:
            reference = self.prepare_fid(final)
            out["fid"] = reference(generate(cfg, g, reference.num_real, self.device))
        out["seconds"] = time.perf_counter() - t0
        return {f"eval/{k}": float(v) for k, v in out.items()}
