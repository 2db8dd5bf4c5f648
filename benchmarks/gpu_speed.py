"""Speed of the training step on each path (train.step_mode), alone and packed, on a GPU or a CPU.

Prints, in one process and one run (ratios are only meaningful within one run):
1. the matmul peak measured here (fp32, and bf16 on a GPU): what "achieved TFLOP/s" is against;
2. per recipe (``dsprites`` 64 px, ``dsprites-32``, ``mnist``: the official MNIST recipe, fed
   sklearn's digits so no files are needed) and per path (eager, compiled, graph): steps/s,
   images/s (real images: batch x steps/s), achieved TFLOP/s and its share of the peak, the
   operator dispatches per step (top-level aten operators in torch.profiler over one iteration:
   a machine-independent proxy for kernel launches, countable on a CPU; a captured graph's replay
   dispatches none) and, on a GPU, the kernel launches per step (CUDA launch calls);
3. packing: K = 1, 2, 4, 8 processes training ``dsprites`` at once on the one device (what Ray's
   fractional GPUs, ``--gpus-per-trial 1/K``, amount to: logical shares, no isolation), their
   aggregate model-steps/s;
4. the equality check: each fast path's losses against the eager path's over 20 steps of a tiny
   model on this device (max absolute difference).

Every figure is timed after warm-up (compilation, capture) and printed as soon as it is measured,
so a run stopped by a time limit keeps what it printed. Nothing is asserted.

    python benchmarks/gpu_speed.py                      # on the GPU: every recipe, path and K (~5 min)
    python benchmarks/gpu_speed.py --tiny --paths eager,compiled --pack 1,2   # a CPU-sized run
    python benchmarks/gpu_speed.py --recipes dsprites --paths eager,graph --seconds 5
    python benchmarks/gpu_speed.py --recipes dsprites --pack "" --skip-equality --profile   # where the time goes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # infogan, when run from elsewhere

from throughput import matmul_peak_gflops, self_time_by_kind  # noqa: E402

from infogan.config import Config  # noqa: E402
from infogan.data import load_dataset  # noqa: E402
from infogan.presets import PRESETS  # noqa: E402
from infogan.sampling import IterationSampler, loop_generator  # noqa: E402
from infogan.step import InfoGANStep  # noqa: E402
from infogan.train import make_iteration, resolve_device  # noqa: E402

# A recipe: the preset it comes from, plus overrides (mnist's networks and batch on sklearn digits).
RECIPES = {
    "dsprites": ("dsprites", {}),
    "dsprites-32": ("dsprites-32", {}),
    "mnist": ("digits", {}),
}
TINY = {"model.width": 0.125, "train.batch_size": 16}


def recipe_config(name: str, device: torch.device, mode: str, tiny: bool) -> Config:
    preset, extra = RECIPES[name]
    flat = {**PRESETS[preset]["overrides"], **extra, "train.device": device.type, "train.step_mode": mode,
            "train.precision": "fp32", **(TINY if tiny else {})}
    return Config.from_flat(flat)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(cfg: Config, device: torch.device, mode: str) -> tuple[InfoGANStep, Callable[[], torch.Tensor]]:
    """A fresh step on ``mode`` and a function running one iteration (no CR phase)."""
    torch.manual_seed(cfg.train.seed)
    dataset = load_dataset(cfg, device)
    step = InfoGANStep(cfg, device, None)
    iteration = make_iteration(mode, step, IterationSampler(cfg, dataset, loop_generator(cfg.train.seed, device)))
    return step, lambda: iteration(False)


def steps_per_second(one: Callable[[], torch.Tensor], device: torch.device, seconds: float,
                     warmup: int) -> float:
    """Iterations per second over about ``seconds``, after ``warmup`` iterations."""
    for _ in range(warmup):
        one()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(10):
            last = one()
        n += 10
        _sync(device)
        if time.perf_counter() - t0 >= seconds:
            break
    last.cpu()
    return n / (time.perf_counter() - t0)


def dispatches_per_step(one: Callable[[], torch.Tensor]) -> tuple[int, int]:
    """Operator dispatches and kernel launches of one iteration, from torch.profiler.

    Dispatches: the top-level ``aten::`` operators called (a nested op, e.g. ``aten::convolution``
    inside ``aten::conv2d``, is not counted again) -- what eager PyTorch dispatches from Python,
    and what compiled code still calls (convolutions, matmuls) besides its own fused kernels;
    countable on a CPU. Launches: CUDA runtime/driver kernel launches and graph launches (0 on
    a CPU). A TorchDispatchMode cannot count them: torch.compile refuses to run under one.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one()
    events = prof.events()
    aten = sum(1 for e in events if e.name.startswith("aten::")
               and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))
    launches = sum(1 for e in events if e.name in _LAUNCHES)
    return aten, launches


_LAUNCHES = {"cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx", "cudaLaunchKernelExC", "cudaGraphLaunch"}


def where_time_goes(one: Callable[[], torch.Tensor], device: torch.device, steps: int = 20, top: int = 6) -> None:
    """Print where an iteration's time goes on this path (torch.profiler over ``steps`` iterations).

    Host: the operators' self time by kind (throughput.OP_KINDS) as a share of the profiled wall
    time (a compiled step's generated kernels count as "fused kernels", its wrappers as "compile
    wrappers"); the rest is Python and work the profiler does not name. On a GPU also the kernels'
    time per step as a share of the wall time (how busy the GPU is: a launch-bound step leaves it
    idle) and the costliest kernels. Profiling slows the host, so the shares, not the
    milliseconds, are what to read.
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    _sync(device)
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            one()
        _sync(device)
        wall = (time.perf_counter() - t0) / steps * 1e6  # microseconds per step, profiled
    events = prof.key_averages()
    kinds = self_time_by_kind(e for e in events if e.self_cpu_time_total > 0)
    ops = sum(kinds.values()) / steps
    shares = ", ".join(f"{k} {100 * v / steps / wall:.0f}%" for k, v in kinds.items())
    print(f"    profile: {wall / 1e3:.2f} ms/step profiled; host operators {100 * ops / wall:.0f}% ({shares}); "
          f"Python and unnamed work {max(0.0, 100 * (1 - ops / wall)):.0f}%", flush=True)
    if cuda:
        kernels = [e for e in events if getattr(e, "self_device_time_total", 0) > 0]
        busy = sum(e.self_device_time_total for e in kernels) / steps
        costliest = ", ".join(f"{e.key[:40]} {100 * e.self_device_time_total / steps / wall:.1f}%"
                              for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:top])
        print(f"    GPU kernels {busy / 1e3:.2f} ms/step = {100 * busy / wall:.0f}% of the step (busy); "
              f"costliest: {costliest}", flush=True)


def flops_per_step(cfg: Config, device: torch.device) -> float:
    """FLOPs of one eager iteration (torch's FlopCounterMode): the same on every path."""
    _, one = build(cfg, device, "eager")
    one()  # optimiser state and anything lazy exist before counting
    counter = FlopCounterMode(display=False)
    with counter:
        one()
    return float(counter.get_total_flops())


def measure_paths(args: argparse.Namespace, device: torch.device, peaks: dict[str, float]) -> None:
    for name in args.recipes:
        flops = flops_per_step(recipe_config(name, device, "eager", args.tiny), device)
        eager_rate = None
        for mode in args.paths:
            cfg = recipe_config(name, device, mode, args.tiny)
            try:
                _, one = build(cfg, device, mode)
                t0 = time.perf_counter()
                one()
                _sync(device)
                first = time.perf_counter() - t0
                rate = steps_per_second(one, device, args.seconds, args.warmup)
                dispatches, launches = dispatches_per_step(one)
            except Exception as err:  # a path this device or torch cannot run: say so, go on
                print(f"{name:12s} {mode:9s} failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}", flush=True)
                continue
            eager_rate = rate if mode == "eager" else eager_rate
            tflops = rate * flops / 1e12
            ratio = f"  {rate / eager_rate:5.2f}x eager" if eager_rate and mode != "eager" else ""
            print(f"{name:12s} {mode:9s} {rate:9.1f} steps/s {rate * cfg.train.batch_size:11.0f} images/s "
                  f"{tflops:9.4g} TFLOP/s = {100 * tflops * 1e3 / peaks['fp32']:6.2f}% of fp32 peak  "
                  f"{dispatches:5d} dispatches/step {launches:5d} launches/step  first step {first:6.1f} s{ratio}",
                  flush=True)
            if args.profile:
                where_time_goes(one, device)
        print(f"{name:12s} one step = {flops / 1e9:.2f} GFLOP (batch {cfg.train.batch_size})", flush=True)


def worker(args: argparse.Namespace) -> None:
    """One packed process: warm up, wait for the common start, train for the window, print JSON."""
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    cfg = recipe_config(args.pack_recipe, device, args.pack_path, args.tiny)
    _, one = build(cfg, device, args.pack_path)
    for _ in range(args.warmup):
        one()
    _sync(device)
    # A barrier: every process is warm before any starts its window, so the windows overlap.
    barrier = Path(args.barrier)
    (barrier / f"ready-{os.getpid()}").touch()
    while len(list(barrier.glob("ready-*"))) < args.pack_size:
        time.sleep(0.05)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        for _ in range(5):
            last = one()
        n += 5
        _sync(device)
    last.cpu()
    print(json.dumps({"steps_per_second": n / (time.perf_counter() - t0)}), flush=True)


def measure_packing(args: argparse.Namespace) -> None:
    import tempfile

    for k in args.pack:
        with tempfile.TemporaryDirectory() as barrier:
            cmd = [sys.executable, __file__, "--worker", "--device", args.device, "--pack-recipe", args.pack_recipe,
                   "--pack-path", args.pack_path, "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                   "--barrier", barrier, "--pack-size", str(k)] + (["--tiny"] if args.tiny else [])
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for _ in range(k)]
            rates, errors = [], []
            for p in procs:
                out, err = p.communicate(timeout=args.seconds + 900)
                lines = [ln for ln in out.splitlines() if ln.startswith("{")]
                if lines:
                    rates.append(json.loads(lines[-1])["steps_per_second"])
                else:
                    errors.append((err.strip().splitlines() or ["no output"])[-1])
        if errors:
            print(f"pack K={k}: {len(errors)} of {k} processes failed: {errors[0][:160]}", flush=True)
        if rates:
            print(f"pack K={k}: {args.pack_recipe} on {args.pack_path}, {sum(rates):9.1f} model-steps/s aggregate, "
                  f"{min(rates):.1f}-{max(rates):.1f} per process", flush=True)


def equality(args: argparse.Namespace, device: torch.device) -> None:
    cfg = Config.from_flat({**RECIPES["dsprites"][1], **TINY, "model.image_size": 32, "train.device": device.type,
                            "train.batch_size": 8})
    reference = None
    for mode in ["eager"] + [m for m in args.paths if m != "eager"]:
        try:
            _, one = build(cfg.replace(**{"train.step_mode": mode}), device, mode)
            losses = torch.stack([one() for _ in range(20)]).cpu()
        except Exception as err:
            print(f"equality {mode}: failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}", flush=True)
            continue
        if reference is None:
            reference = losses
            continue
        diff = (losses - reference).abs()
        print(f"equality {mode} vs eager over 20 steps (tiny 32 px model): max |diff| step 1 {diff[0].max():.2e}, "
              f"steps 1-20 {diff.max():.2e} (losses of size {reference.abs().max():.2f})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated: " + ", ".join(RECIPES))
    parser.add_argument("--paths", default=None, help="comma-separated step modes (default: eager,compiled and "
                                                      "graph on a GPU; eager,compiled on a CPU)")
    parser.add_argument("--pack", default="1,2,4,8", help="comma-separated K for the packing measurement ('' = skip)")
    parser.add_argument("--pack-recipe", default="dsprites", choices=sorted(RECIPES))
    parser.add_argument("--pack-path", default="eager", help="the step mode the packed processes run")
    parser.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--tiny", action="store_true", help="width 0.125, batch 16: a CPU-sized smoke run")
    parser.add_argument("--skip-equality", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also print where each path's step time goes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--barrier", default="", help=argparse.SUPPRESS)
    parser.add_argument("--pack-size", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train() does
    args.recipes = [r for r in args.recipes.split(",") if r]
    args.paths = (args.paths.split(",") if args.paths else
                  ["eager", "compiled", "graph"] if device.type == "cuda" else ["eager", "compiled"])
    args.pack = [int(k) for k in args.pack.split(",") if k]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{'tiny models' if args.tiny else 'full recipes'}, fp32", flush=True)
    peaks = {"fp32": matmul_peak_gflops(torch.float32, device=device, max_n=8192 if device.type == "cuda" else 2048)[0]}
    if device.type == "cuda":
        peaks["bf16"] = matmul_peak_gflops(torch.bfloat16, device=device, max_n=8192)[0]
    print("matmul peak: " + ", ".join(f"{k} {v / 1e3:.2f} TFLOP/s" for k, v in peaks.items()), flush=True)
    measure_paths(args, device, peaks)
    if args.pack:
        measure_packing(args)
    if not args.skip_equality:
        equality(args, device)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


if __name__ == "__main__":
    main()
