"""What one training iteration draws, from the loop's generator on the training device.

Per iteration, in this order: a real batch, a latent batch (the D step's, and every G step's with
``train.g_latent='shared'``), one latent batch per G step with ``'fresh'``, and InfoGAN-CR's pairs
once its phase has started. The generator lives on the training device, so on a GPU nothing is
drawn on the host and nothing waits for it: every draw has a static shape and no host
synchronisation, which lets a CUDA graph capture the whole iteration (``infogan.capture``). Its
state is the loop's only data state, saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from infogan import codes as latent_codes
from infogan.config import Config
from infogan.data.base import ImageDataset

Pair = tuple[latent_codes.Latent, latent_codes.Latent, torch.Tensor]


@dataclass
class Draw:
    """One iteration's inputs, on the training device."""

    real: torch.Tensor  # (B, C, S, S) in [-1, 1]
    latent: latent_codes.Latent
    g_latents: list[latent_codes.Latent] | None  # one per G step ('fresh'), else None
    pair: Pair | None  # (first, second, shared code index) during InfoGAN-CR's phase


def loop_generator(seed: int, device: torch.device) -> torch.Generator:
    """The loop's generator on ``device``, seeded with ``train.seed``."""
    return torch.Generator(device=device).manual_seed(seed)


class IterationSampler:
    """Draws an iteration's inputs (see the module docstring).

    Args:
        cfg: the experiment config (batch size, codes, ``train.g_latent``, ``train.g_steps``).
        dataset: the training data, on the training device.
        generator: the loop's generator, on the training device.
    """

    def __init__(self, cfg: Config, dataset: ImageDataset, generator: torch.Generator):
        self.cfg, self.dataset, self.generator = cfg, dataset, generator
        self.channels_last = generator.device.type == "cuda"

    def __call__(self, cr: bool) -> Draw:
        """The next iteration's draw; ``cr`` says whether InfoGAN-CR's phase has started."""
        keys, draw = self.draw_keys(cr)
        return Draw(self.render(keys), draw.latent, draw.g_latents, draw.pair)

    def draw_keys(self, cr: bool) -> tuple[torch.Tensor, Draw]:
        """Everything the next iteration draws from the generator, in its order, with the real
        batch as the keys that pick its images (``render`` makes them; what a dataset without
        ``sample_keys`` draws is the images themselves): an ensemble renders its members' batches
        at once. The returned draw's ``real`` is the keys."""
        cfg, n, gen = self.cfg, self.cfg.train.batch_size, self.generator
        sample_keys = getattr(self.dataset, "sample_keys", None)
        keys = sample_keys(n, gen) if sample_keys is not None else self.dataset.sample(n, gen)
        latent = latent_codes.sample(cfg.codes, n, gen)
        g_latents = None
        if cfg.train.g_latent == "fresh":
            g_latents = [latent_codes.sample(cfg.codes, n, gen) for _ in range(cfg.train.g_steps)]
        pair = latent_codes.sample_pairs(cfg.codes, n, gen) if cr else None
        return keys, Draw(keys, latent, g_latents, pair)

    def render(self, keys: torch.Tensor) -> torch.Tensor:
        """The real images of ``draw_keys``'s keys (of one batch or of several laid end to end)."""
        images_from_keys = getattr(self.dataset, "images_from_keys", None)
        real = images_from_keys(keys) if images_from_keys is not None else keys
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return real
