"""Training throughput: the project's loop against a straightforward reference loop, in one run.

The reference is what typical public InfoGAN implementations do, on the same networks: a
``DataLoader`` over a map-style dataset (per-sample ``__getitem__`` + collate), fp32, default
``torch.optim.Adam``, and separate forward passes (D on real, D on fake, then in the G step D
on fake again and the trunk a second time for Q, with D's weight gradients computed and
thrown away). The project loop is ``infogan.loop.train`` itself.

Both figures are training throughput only. The project loop is timed with evaluation reduced
to Q on 16 labelled images (no FID, no disentanglement metrics), no run directory (so no
checkpoints or figures), timed by the loop itself without its evaluation; a
warm-up run's time is subtracted too, which removes set-up cost. Also prints the achieved GFLOP/s
of both loops against the matmul peak measured in the same process: FLOPs are counted with
torch's FlopCounterMode, for the project loop as FLOPs(2-step run) - FLOPs(1-step run), so the
start-up and end-of-run work both runs share cancel and exactly one training step remains. With
bf16 autocast the project loop is compared with the bf16 matmul peak as well as the fp32 one.

With ``--profile`` it also prints where the project loop's step time goes: torch.profiler's
self CPU time per operator over a few steps, and the same summed into kinds (matmuls, convolutions
forward and backward, batch norm, optimiser, element-wise, other).

    python benchmarks/throughput.py                   # digits preset (the official MNIST recipe), 2 threads
    python benchmarks/throughput.py --preset dsprites-32 --profile
    python benchmarks/throughput.py --steps 200 --precision bf16 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from infogan import codes as latent_codes
from infogan import losses
from infogan.config import Config
from infogan.data import load_dataset
from infogan.loop import resolve_precision, train
from infogan.model import build
from infogan.presets import PRESETS


class _NumpyImages(Dataset):
    """A map-style dataset returning one image at a time, as torchvision datasets do."""

    def __init__(self, images: np.ndarray):
        self.images = images  # (N, C, H, W) float32 in [-1, 1]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images[i])


def reference_step(cfg: Config, g, d, opt_d, opt_g, real: torch.Tensor, gen: torch.Generator) -> None:
    """One step the way typical public implementations write it (``train.g_steps`` G steps, the
    later ones on freshly generated fakes from the same latents)."""
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
    # G + Q steps: D on the fakes for the GAN term, then the trunk again for Q.
    for k in range(cfg.train.g_steps):
        if k > 0:
            fake = g(latent_codes.assemble(cfg.codes, latent))
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


def training_only(cfg: Config) -> Config:
    """The config with evaluation cut to its minimum: no FID, no disentanglement metrics, Q on 16
    labelled images once at the end, no intermediate evaluations or checkpoints."""
    return cfg.replace(**{
        "eval.intermediate": "categorical", "eval.final": "categorical", "data.eval_size": 16,
        "train.eval_every": 10**6, "train.checkpoint_every": 10**6,
    })


def _count_flops(cfg: Config, steps: int) -> float:
    with FlopCounterMode(display=False) as counter:
        train(cfg.replace(**{"train.steps": steps}))
    return float(counter.get_total_flops())


def project_flops_per_step(cfg: Config) -> float:
    """FLOPs of one training step of the project loop.

    Counted as FLOPs(2 steps) - FLOPs(1 step): both runs do the same set-up and the same
    end-of-run evaluation, so only one training step is left in the difference.
    """
    cfg = training_only(cfg)
    return _count_flops(cfg, 2) - _count_flops(cfg, 1)


def _training_seconds(cfg: Config, steps: int) -> float:
    """Seconds ``train`` spent training over ``steps`` steps (its images/s excludes evaluations)."""
    result = train(cfg.replace(**{"train.steps": steps}))  # run_dir=None: no checkpoints, no figures
    return steps * cfg.train.batch_size / result.images_per_second


def run_project(cfg: Config, steps: int, warmup: int) -> float:
    """Training images/s of ``infogan.loop.train`` over ``steps`` steps after ``warmup`` steps."""
    cfg = training_only(cfg)
    # Subtracting the warm-up run's time removes the first steps' one-off costs (allocator,
    # kernel selection), as the reference loop's untimed warm-up does.
    seconds = _training_seconds(cfg, warmup + steps) - _training_seconds(cfg, warmup)
    return steps * cfg.train.batch_size / seconds


OP_KINDS = (  # operator-name fragments -> kind, first match wins
    ("compiledfxgraph", "fused kernels"), ("compiled", "compile wrappers"), ("dynamo", "compile wrappers"),
    ("aotdispatcher", "compile wrappers"),
    ("convolution_backward", "conv backward"), ("convolution", "conv forward"), ("addmm", "matmul"),
    ("mm", "matmul"), ("batch_norm", "batch norm"), ("adam", "optimiser"), ("leaky_relu", "element-wise"),
    ("threshold", "element-wise"), ("tanh", "element-wise"), ("add", "element-wise"), ("mul", "element-wise"),
    ("copy", "copies"), ("cat", "copies"),
)


def self_time_by_kind(events: Iterable[Any]) -> dict[str, float]:
    """Self CPU time (microseconds) of profiled operators (``prof.key_averages()``) summed by kind
    (``OP_KINDS``; ``other`` when no fragment matches), largest first."""
    kinds: dict[str, float] = {}
    for e in events:
        kind = next((k for frag, k in OP_KINDS if frag in e.key.lower()), "other")
        kinds[kind] = kinds.get(kind, 0.0) + e.self_cpu_time_total
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def profile_project(cfg: Config, steps: int = 20, warmup: int = 5, top: int = 12) -> None:
    """Print where a training step's CPU time goes: top operators and their kinds."""
    from torch.profiler import ProfilerActivity, profile

    from infogan.step import InfoGANStep

    torch.set_flush_denormal(True)  # as train() does
    device = torch.device("cpu")
    step = InfoGANStep([cfg], load_dataset(cfg, device), device, resolve_precision(cfg.train.precision, device))
    step.train()

    def one() -> None:
        step.iteration(False)

    for _ in range(warmup):
        one()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            one()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\nwhere a project step's time goes ({steps} steps profiled, {total / steps / 1e3:.1f} ms per step):")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {e.key:42s} {100 * e.self_cpu_time_total / total:5.1f}%  {e.count // steps:4d} calls/step")
    print("  by kind: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in self_time_by_kind(events).items()))


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, max_n: int = 2048, seconds: float = 1.0,
                       device: torch.device | str = "cpu") -> tuple[float, int]:
    """Achieved GFLOP/s of square matmuls in ``dtype``: the practical peak of this device.

    The size doubles from 256 up to ``max_n`` while one product takes under 0.25 s, and products
    repeat for about ``seconds``: without native bf16 units a 2048^2 bf16 product is emulated
    and takes tens of seconds, so a fixed size and count would stall the benchmark.

    Returns:
        (GFLOP/s, matrix size used).
    """
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    n = 256
    while True:
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        a @ b  # warm-up at this size (cuBLAS picks its kernel)
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        once = time.perf_counter() - t0
        if once > 0.25 or n >= max_n:
            break
        n *= 2
    reps = max(1, round(seconds / max(once, 1e-6)))
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9, n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=float, default=None, help="override model.width")
    parser.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--profile", action="store_true", help="also print where the project step's time goes")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    overrides = dict(PRESETS[args.preset]["overrides"])
    overrides.update({"train.device": "cpu", "train.precision": args.precision, "train.threads": args.threads})
    if args.width is not None:
        overrides["model.width"] = args.width
    cfg = Config.from_flat(overrides)
    amp = resolve_precision(args.precision, torch.device("cpu"))
    print(f"config: preset={args.preset} arch={cfg.model.resolved_arch} size={cfg.model.image_size} "
          f"width={cfg.model.width} batch={cfg.train.batch_size} g_steps={cfg.train.g_steps} d_norm={cfg.model.d_norm} threads={args.threads} "
          f"precision={args.precision} (autocast dtype {amp})")

    peaks = {"fp32": matmul_peak_gflops(torch.float32)}  # name -> (GFLOP/s, size)
    if amp == torch.bfloat16:
        peaks["bf16"] = matmul_peak_gflops(torch.bfloat16)
    ref_ips, ref_flops = run_reference(cfg, args.steps, args.warmup)
    proj_flops = project_flops_per_step(cfg)
    proj_ips = run_project(cfg, args.steps, args.warmup)
    per_image = {"reference": ref_flops / cfg.train.batch_size, "project": proj_flops / cfg.train.batch_size}
    for dtype_name, (peak, n) in peaks.items():
        print(f"matmul peak ({dtype_name}, {n}^2, {args.threads} threads): {peak:8.1f} GFLOP/s")
    for name, ips in (("reference", ref_ips), ("project", proj_ips)):
        gflops = ips * per_image[name] / 1e9
        # The reference always runs fp32; the project loop may run under bf16 autocast, whose
        # matmuls have their own peak, so it is shown against every peak measured.
        versus = ", ".join(f"{100 * gflops / peak:5.1f}% of {dtype_name} peak" for dtype_name, (peak, _) in peaks.items()
                           if name == "project" or dtype_name == "fp32")
        print(f"{name:9s} loop: {ips:8.1f} images/s  {per_image[name] / 1e6:7.2f} MFLOP/image  "
              f"{gflops:6.1f} GFLOP/s = {versus}")
    print(f"speed-up (project / reference images/s): {proj_ips / ref_ips:.2f}x")
    if args.profile:
        profile_project(cfg)


if __name__ == "__main__":
    main()
