"""Training throughput: the project's loop against a straightforward reference loop, in one run.

The reference is what typical public InfoGAN implementations do, on the same networks: a
``DataLoader`` over a map-style dataset (per-sample ``__getitem__`` + collate), fp32, default
``torch.optim.Adam``, and separate forward passes (D on real, D on fake, then in the G step D
on fake again and the trunk a second time for Q, with D's weight gradients computed and
thrown away). The project loop is ``infogan.train.train`` itself.

Also prints the achieved GFLOP/s of both loops (FLOPs counted with torch's FlopCounterMode on
one step) against the fp32 matmul peak measured in the same process.

    python benchmarks/throughput.py                   # digits preset, 2 threads
    python benchmarks/throughput.py --steps 200 --precision bf16 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from infogan import codes as latent_codes
from infogan import losses
from infogan.config import Config
from infogan.data import load_dataset
from infogan.model import build
from infogan.presets import PRESETS
from infogan.train import resolve_precision, train


class _NumpyImages(Dataset):
    """A map-style dataset returning one image at a time, as torchvision datasets do."""

    def __init__(self, images: np.ndarray):
        self.images = images  # (N, C, H, W) float32 in [-1, 1]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images[i])


def reference_step(cfg: Config, g, d, opt_d, opt_g, real: torch.Tensor, gen: torch.Generator) -> None:
    """One step the way typical public implementations write it."""
    latent = latent_codes.sample(cfg.codes, real.shape[0], gen)
    fake = g(latent_codes.assemble(cfg.codes, latent))
    # D step: two separate forward passes.
    opt_d.zero_grad()
    real_logit, _ = d(real)
    fake_logit, _ = d(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
        F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    loss_d.backward()
    opt_d.step()
    # G + Q step: D on the fakes for the GAN term, then the trunk again for Q.
    opt_g.zero_grad()
    fake_logit, _ = d(fake)
    q = d.q(d.features(fake))
    loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit)) \
        + cfg.loss.lambda_cat * losses.categorical_nll(q.logits, latent.categorical) \
        + cfg.loss.lambda_cont * losses.gaussian_nll(q.mean, latent.continuous, q.log_std)
    loss.backward()
    opt_g.step()


def run_reference(cfg: Config, steps: int, warmup: int) -> tuple[float, float]:
    """Returns (images/s, FLOPs per step) of the reference loop."""
    torch.manual_seed(cfg.train.seed)
    dataset = load_dataset(cfg, "cpu")
    images = dataset.images.numpy() if hasattr(dataset, "images") else dataset.sample(4096, torch.Generator()).numpy()
    loader = DataLoader(_NumpyImages(images), batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    g, d = build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned")
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.optim.lr_d, betas=(cfg.optim.beta1, cfg.optim.beta2))
    opt_g = torch.optim.Adam(list(g.parameters()) + list(d.q_head.parameters()), lr=cfg.optim.lr_g,
                             betas=(cfg.optim.beta1, cfg.optim.beta2))
    gen = torch.Generator().manual_seed(0)

    def batches():
        while True:
            yield from loader

    it = batches()
    with FlopCounterMode(display=False) as counter:
        reference_step(cfg, g, d, opt_d, opt_g, next(it), gen)
    flops = counter.get_total_flops()
    for _ in range(warmup):
        reference_step(cfg, g, d, opt_d, opt_g, next(it), gen)
    t0 = time.perf_counter()
    for _ in range(steps):
        reference_step(cfg, g, d, opt_d, opt_g, next(it), gen)
    return steps * cfg.train.batch_size / (time.perf_counter() - t0), flops


def project_flops_per_step(cfg: Config) -> float:
    """FLOPs of one step of the project loop (counted on a 1-step run)."""
    with FlopCounterMode(display=False) as counter:
        train(cfg.replace(**{"train.steps": 1, "data.eval_size": 16}))
    return float(counter.get_total_flops())


def run_project(cfg: Config, steps: int, warmup: int) -> float:
    """images/s of ``infogan.train.train`` over ``steps`` steps after ``warmup`` steps."""
    cfg = cfg.replace(**{"train.eval_every": 10**6, "train.checkpoint_every": 10**6, "data.eval_size": 16})
    t_warm = train(cfg.replace(**{"train.steps": warmup}))
    t_full = train(cfg.replace(**{"train.steps": warmup + steps}))
    # Subtracting the warm-up run's time removes set-up cost (dataset, model build, eval).
    full_time = (warmup + steps) * cfg.train.batch_size / t_full.images_per_second
    warm_time = warmup * cfg.train.batch_size / t_warm.images_per_second
    return steps * cfg.train.batch_size / (full_time - warm_time)


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=float, default=None, help="override model.width")
    parser.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    overrides = dict(PRESETS[args.preset]["overrides"])
    overrides.update({"train.device": "cpu", "train.precision": args.precision, "train.threads": args.threads})
    if args.width is not None:
        overrides["model.width"] = args.width
    cfg = Config.from_flat(overrides)
    amp = resolve_precision(args.precision, torch.device("cpu"))
    print(f"config: preset={args.preset} arch={cfg.model.resolved_arch} size={cfg.model.image_size} "
          f"width={cfg.model.width} batch={cfg.train.batch_size} threads={args.threads} "
          f"precision={args.precision} (autocast dtype {amp})")

    peak = matmul_peak_gflops()
    ref_ips, ref_flops = run_reference(cfg, args.steps, args.warmup)
    proj_flops = project_flops_per_step(cfg)
    proj_ips = run_project(cfg, args.steps, args.warmup)
    per_image = {"reference": ref_flops / cfg.train.batch_size, "project": proj_flops / cfg.train.batch_size}
    print(f"matmul peak (fp32, 2048^2, {args.threads} threads): {peak:8.1f} GFLOP/s")
    for name, ips in (("reference", ref_ips), ("project", proj_ips)):
        gflops = ips * per_image[name] / 1e9
        print(f"{name:9s} loop: {ips:8.1f} images/s  {per_image[name] / 1e6:7.2f} MFLOP/image  "
              f"{gflops:6.1f} GFLOP/s = {100 * gflops / peak:5.1f}% of peak")
    print(f"speed-up (project / reference images/s): {proj_ips / ref_ips:.2f}x")


if __name__ == "__main__":
    main()
