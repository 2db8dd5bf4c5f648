"""FID without a download: a LeNet-style feature network trained by the project on the dataset.

Inception-v3 weights cannot be fetched here, so by default FID is measured in the feature space
of a small classifier trained on the dataset itself (digit labels, or dSprites' five factors),
as papers on MNIST-like data do. The network is trained once per (dataset, image size,
``FEATURE_NET_VERSION``), deterministically, cached on disk under a file lock so concurrent
trials share one copy, and named ``lenet-<dataset><size>@<hash of its weights>``: every FID
carries that name, so tables never mix FIDs from different extractors.

The Fréchet distance itself is torchmetrics' ``FrechetInceptionDistance`` given our network as
its ``feature`` module. With a local Inception weights file (``eval.inception_weights``) the
standard Inception-v3 FID is used instead (needs torch-fidelity, as torchmetrics does).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from infogan.atomic import atomic_path
from infogan.data.base import GroundTruthDataset, ImageDataset

# 2: procedural dSprites drawn with DeepMind's geometry (version 1 nets saw sprites 1.45x too large).
FEATURE_NET_VERSION = 2
NUM_FEATURES = 128


class FeatureNet(nn.Module):
    """Small LeNet-style classifier; ``forward`` returns the (N, 128) penultimate features for FID.

    Three stride-2 3x3 convs keep it cheap on CPU at 64 px (~2.5 M multiply-adds per image) while
    separating digit classes and dSprites factors well.
    """

    num_features = NUM_FEATURES

    def __init__(self, channels: int, head_sizes: tuple[int, ...]):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, 2, 1), nn.ReLU(),  # (N, 16, S/2, S/2)
            nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),  # (N, 32, S/4, S/4)
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),  # (N, 64, S/8, S/8)
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # (N, 1024) whatever the image size
            nn.Linear(64 * 16, NUM_FEATURES), nn.ReLU(),
        )
        self.heads = nn.ModuleList(nn.Linear(NUM_FEATURES, k) for k in head_sizes)
        self.head_sizes = head_sizes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images.float())

    def logits(self, images: torch.Tensor) -> list[torch.Tensor]:
        h = self.forward(images)
        return [head(h) for head in self.heads]


def _labelled_batches(dataset: ImageDataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Training data for the feature net: images and one label column per head."""
    if isinstance(dataset, GroundTruthDataset):
        factors = dataset.sample_factors(n, np.random.default_rng(seed))
        return dataset.images_from_factors(factors), torch.from_numpy(factors), tuple(dataset.factor_sizes)
    images, labels = dataset.eval_set(n, seed)
    if labels is None or dataset.num_classes is None:
        raise ValueError(f"dataset {dataset.name!r} has neither labels nor factors to train an FID feature net on")
    return images, torch.from_numpy(labels).unsqueeze(1), (int(dataset.num_classes),)


def train_feature_net(dataset: ImageDataset, steps: int = 400, batch_size: int = 128, n_images: int = 20_000,
                      seed: int = 0) -> FeatureNet:
    """Train the classifier deterministically on CPU (seconds for these sizes).

    Runs under a forked RNG so a training run that trains it mid-way keeps its own RNG stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train_feature_net(dataset, steps, batch_size, n_images, seed)


def _train_feature_net(dataset: ImageDataset, steps: int, batch_size: int, n_images: int, seed: int) -> FeatureNet:
    images, labels, heads = _labelled_batches(dataset, n_images, seed)
    images, labels = images.cpu(), labels.cpu()
    net = FeatureNet(images.shape[1], heads)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=gen)
        logits = net.logits(images[idx])
        loss = sum(F.cross_entropy(lg, labels[idx, i]) for i, lg in enumerate(logits))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def _weights_hash(net: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def load_or_train_feature_net(dataset: ImageDataset, cache_dir: str | os.PathLike[str],
                              steps: int = 400) -> tuple[FeatureNet, str]:
    """The cached feature net for this dataset and size, training it once if absent.

    ``steps`` is part of the cache key, so a quick test net never stands in for the real one.

    Returns:
        (network in eval mode on CPU, its id ``lenet-<dataset><size>@<hash>``).
    """
    cache = Path(os.path.expanduser(cache_dir))
    cache.mkdir(parents=True, exist_ok=True)
    channels, size = dataset.image_shape[0], dataset.image_shape[-1]
    # A dataset drawn another way under the same name (dSprites' published file) gets its own net.
    source = getattr(dataset, "source", "")
    stem = f"lenet-{dataset.name}{'-' + source if source else ''}{size}-v{FEATURE_NET_VERSION}-s{steps}"
    path = cache / f"{stem}.pt"
    with FileLock(str(cache / f"{stem}.lock")):  # one trainer; other trials wait, then load
        if not path.exists():
            net = train_feature_net(dataset, steps=steps)
            with atomic_path(path) as tmp:
                torch.save({"state_dict": net.state_dict(), "heads": list(net.head_sizes), "channels": channels}, tmp)
        payload = torch.load(path, map_location="cpu", weights_only=True)
    net = FeatureNet(int(payload["channels"]), tuple(payload["heads"]))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return net, f"lenet-{dataset.name}{size}@{_weights_hash(net)}"


class _InceptionInput(nn.Module):
    """Grey [-1, 1] images -> the uint8 RGB images torchmetrics' Inception expects."""

    def __init__(self, inception: nn.Module):
        super().__init__()
        self.inception = inception

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = images.float().expand(-1, 3, -1, -1) if images.shape[1] == 1 else images.float()
        return self.inception(((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8))


def inception_feature_net(weights_path: str | None) -> tuple[nn.Module, str]:
    """Inception-v3 from a local weights file (never downloaded)."""
    if not weights_path:
        raise ValueError(
            "Inception FID needs a local weights file: set eval.inception_weights to the path of "
            "torch-fidelity's 'weights-inception-2015-12-05-6726825d.pth' (nothing is downloaded), "
            "or use eval.feature_net='lenet'"
        )
    path = Path(os.path.expanduser(weights_path))
    if not path.is_file():
        raise ValueError(f"invalid config value eval.inception_weights={weights_path!r}: no such file")
    from torchmetrics.image.fid import NoTrainInceptionV3

    inception = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                   feature_extractor_weights_path=str(path))
    net = _InceptionInput(inception)
    net.num_features = 2048  # type: ignore[assignment]
    return net, f"inception-v3@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


class FIDReference:
    """FID against one fixed set of real images whose features are extracted once.

    A run evaluates against the same real images every time, so their feature statistics are
    kept in torchmetrics' ``FrechetInceptionDistance`` (``reset_real_features=False``) and each
    call only extracts the generated images' features.
    """

    @torch.inference_mode()
    def __init__(self, feature_net: nn.Module, real: torch.Tensor, batch_size: int = 500):
        from torchmetrics.image.fid import FrechetInceptionDistance

        if len(real) < 2:
            raise ValueError(f"FID needs at least 2 images per set, got {len(real)} real")
        self.num_real = len(real)
        self.batch_size = batch_size
        self._metric = FrechetInceptionDistance(feature=feature_net, normalize=True, reset_real_features=False)
        self._update(real, is_real=True)

    def _update(self, images: torch.Tensor, is_real: bool) -> None:
        for start in range(0, len(images), self.batch_size):
            self._metric.update(images[start:start + self.batch_size].cpu().float(), real=is_real)

    @torch.inference_mode()
    def __call__(self, fake: torch.Tensor) -> float:
        """FID between the real set and ``fake`` (N, C, H, W) in [-1, 1]."""
        if len(fake) < 2:
            raise ValueError(f"FID needs at least 2 images per set, got {len(fake)} generated")
        self._metric.reset()  # drops the previous generated set, keeps the real statistics
        self._update(fake, is_real=False)
        return float(self._metric.compute())


def frechet_distance(feature_net: nn.Module, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 500) -> float:
    """FID between two image sets (N, C, H, W) in [-1, 1] in ``feature_net``'s feature space."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} real and {len(fake)} generated")
    return FIDReference(feature_net, real, batch_size)(fake)
