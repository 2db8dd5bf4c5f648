"""Speed of the training step on each path (train.step_mode) for K members, on a GPU or a CPU.

Prints, in one process and one run (ratios are only meaningful within one run):
1. the device, torch, CUDA and cuDNN versions and whether TF32 is on; the matmul peak measured here
   (fp32, and bf16 on a GPU): what "achieved TFLOP/s" is against;
2. per recipe (``dsprites`` 64 px, ``dsprites-32``, ``mnist``: the official MNIST recipe, fed
   sklearn's digits so no files are needed), path (eager, compiled, graph) and K (members of one
   step, seeds 0..K-1), in the plain phase and in InfoGAN-CR's phase (``+cr``: the CR step and
   G's CR term): iterations/s, model-steps/s (K x iterations/s), achieved TFLOP/s and its share
   of the peak, the operator dispatches per iteration (top-level aten operators in torch.profiler:
   a machine-independent proxy for kernel launches; a captured graph's replay dispatches none),
   on a GPU the kernel launches per iteration and the peak GPU memory, and the first iteration's
   time (compilation and capture included);
3. on a GPU, the eager path with cuDNN's autotuner (``torch.backends.cudnn.benchmark``) off and on;
4. packing: K = 1, 2, 4, 8 processes training ``dsprites`` at once on the one device (what Ray's
   fractional GPUs, ``--gpus-per-trial 1/K``, amount to: logical shares, no isolation);
5. the equality check: each fast path's losses against the eager path's over 20 steps of a tiny
   model on this device, for one member and for several (max absolute difference).

Every figure is timed after warm-up (compilation, capture) and printed as soon as it is measured,
so a run stopped by a time limit keeps what it printed; ``--budget`` skips (and says so) what
would start after it. Nothing is asserted.

    python benchmarks/gpu_speed.py --quick              # the GPU check: every path at K = 1, 8, 32 in < 4 min
    python benchmarks/gpu_speed.py                      # on the GPU: every recipe, path, K and phase
    python benchmarks/gpu_speed.py --quick --device cpu --tiny --budget 120   # the same, CPU-sized
    python benchmarks/gpu_speed.py --recipes dsprites --paths eager,graph --members 1,32 --seconds 5
    python benchmarks/gpu_speed.py --recipes dsprites --members 1 --pack "" --skip-equality --profile
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
from infogan.loop import configure_device, make_iteration, resolve_device  # noqa: E402
from infogan.presets import PRESETS  # noqa: E402
from infogan.speeds import cpu_name  # noqa: E402
from infogan.step import InfoGANStep  # noqa: E402

# A recipe: the preset it comes from, plus overrides (mnist's networks and batch on sklearn digits).
RECIPES = {
    "dsprites": ("dsprites", {}),
    "dsprites-32": ("dsprites-32", {}),
    "mnist": ("digits", {}),
}
TINY = {"model.width": 0.125, "train.batch_size": 16}
CR = {"loss.lambda_cr": 2.0, "loss.cr_start": 0}  # InfoGAN-CR's phase from the first iteration


def recipe_config(name: str, device: torch.device, mode: str, tiny: bool, cr: bool = False) -> Config:
    preset, extra = RECIPES[name]
    flat = {**PRESETS[preset]["overrides"], **extra, "train.device": device.type, "train.step_mode": mode,
            "train.precision": "fp32", **(TINY if tiny else {}), **(CR if cr else {})}
    return Config.from_flat(flat)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(cfg: Config, device: torch.device, mode: str, members: int = 1, cudnn_benchmark: bool | None = None
          ) -> tuple[InfoGANStep, Callable[[bool], torch.Tensor]]:
    """A fresh step of ``members`` members (seeds 0..K-1) and its iteration on ``mode`` (a function
    of whether InfoGAN-CR's phase has started), set up as the loop sets them up (``cudnn_benchmark``
    overrides the autotuner's setting)."""
    configure_device(cfg, device)
    if cudnn_benchmark is not None:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    dataset = load_dataset(cfg, device)
    step = InfoGANStep([cfg.replace(**{"train.seed": s}) for s in range(members)], dataset, device)
    step.train()
    return step, make_iteration(mode, step)


def one_iteration(step: InfoGANStep, iteration: Callable[[bool], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """One iteration at a time, in InfoGAN-CR's phase when the step's config switches it on."""
    cr = step.uses_cr
    return lambda: iteration(cr)


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
    """FLOPs of one eager iteration of one member (torch's FlopCounterMode): the same on every path,
    K times as many for K members."""
    one = one_iteration(*build(cfg, device, "eager"))
    one()  # optimiser state and anything lazy exist before counting
    counter = FlopCounterMode(display=False)
    with counter:
        one()
    return float(counter.get_total_flops())


class Budget:
    """Seconds left for measurements: what would start after the budget is skipped, and says so."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, what: str) -> bool:
        if time.monotonic() < self.end:
            return True
        print(f"{what}: skipped (time budget spent)", flush=True)
        return False


def measure(name: str, mode: str, k: int, cr: bool, args: argparse.Namespace, device: torch.device,
            peaks: dict[str, float], flops: float, cudnn_benchmark: bool | None = None) -> float | None:
    """One line: recipe ``name`` on ``mode`` with ``k`` members (in the CR phase with ``cr``); its
    model-steps/s, or None when it failed."""
    label = f"{name + ('+cr' if cr else ''):14s} {mode:9s} K={k:<3d}"
    cuda = device.type == "cuda"
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        cfg = recipe_config(name, device, mode, args.tiny, cr)
        one = one_iteration(*build(cfg, device, mode, k, cudnn_benchmark))
        t0 = time.perf_counter()
        one()
        _sync(device)
        first = time.perf_counter() - t0
        rate = steps_per_second(one, device, args.seconds, args.warmup)
        dispatches, launches = dispatches_per_step(one)
        memory = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    except Exception as err:  # a path this device or torch cannot run: say so, go on
        print(f"{label} failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}", flush=True)
        return None
    tflops = rate * k * flops / 1e12
    print(f"{label} {rate:8.1f} it/s {k * rate:9.1f} model-steps/s {k * rate * cfg.train.batch_size:10.0f} images/s "
          f"{tflops:8.4g} TFLOP/s = {100 * tflops * 1e3 / peaks['fp32']:6.2f}% of fp32 peak  "
          f"{dispatches:5d} dispatches/it {launches:5d} launches/it  peak memory {memory:5.2f} GiB  "
          f"first it {first:6.1f} s", flush=True)
    if args.profile:
        where_time_goes(one, device)
    return k * rate


def measure_paths(args: argparse.Namespace, device: torch.device, peaks: dict[str, float], budget: Budget) -> None:
    for name in args.recipes:
        flops = flops_per_step(recipe_config(name, device, "eager", args.tiny), device)
        cfg = recipe_config(name, device, "eager", args.tiny)
        print(f"{name:14s} one model-step = {flops / 1e9:.2f} GFLOP (batch {cfg.train.batch_size})", flush=True)
        members = args.members if name == args.recipes[0] else [1]  # K > 1: the first (headline) recipe
        rates: dict[str, float] = {}
        for mode in args.paths:
            for k in members:
                if budget.left(f"{name} {mode} K={k}"):
                    rate = measure(name, mode, k, False, args, device, peaks, flops)
                    if rate is not None and k == 1:
                        rates[mode] = rate
        if "eager" in rates and len(rates) > 1:
            print(f"{name:14s} K=1 against eager: " + ", ".join(f"{m} {r / rates['eager']:.2f}x" for m, r in rates.items()
                                                             if m != "eager"), flush=True)
        if args.cr and name.startswith("dsprites"):
            for mode in args.paths:
                if budget.left(f"{name}+cr {mode} K=1"):
                    measure(name, mode, 1, True, args, device, peaks, flops)


def measure_cudnn_benchmark(args: argparse.Namespace, device: torch.device, peaks: dict[str, float],
                            budget: Budget) -> None:
    """The eager path with cuDNN's autotuner off and on (it chooses convolution kernels by timing them)."""
    name = args.recipes[0]
    flops = flops_per_step(recipe_config(name, device, "eager", args.tiny), device)
    for on in (False, True):
        if budget.left(f"cudnn.benchmark={on}"):
            print(f"cudnn.benchmark={on}:", flush=True)
            measure(name, "eager", 1, False, args, device, peaks, flops, cudnn_benchmark=on)


def worker(args: argparse.Namespace) -> None:
    """One packed process: warm up, wait for the common start, train for the window, print JSON."""
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    cfg = recipe_config(args.pack_recipe, device, args.pack_path, args.tiny)
    one = one_iteration(*build(cfg, device, args.pack_path))
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


def measure_packing(args: argparse.Namespace, budget: Budget) -> None:
    import tempfile

    for k in args.pack:
        if not budget.left(f"pack K={k}"):
            return
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


def equality(args: argparse.Namespace, device: torch.device, budget: Budget) -> None:
    """Each fast path against eager over 20 steps of a tiny 32 px model, through InfoGAN-CR's start
    (step 10), with one member and with several."""
    cfg = Config.from_flat({**TINY, "model.image_size": 32, "train.device": device.type, "train.batch_size": 8,
                            "loss.lambda_cr": 2.0, "loss.cr_start": 10})
    for k in sorted({1, max(args.members)}):
        reference = None
        for mode in ["eager"] + [m for m in args.paths if m != "eager"]:
            if not budget.left(f"equality {mode} K={k}"):
                return
            try:
                step, iteration = build(cfg.replace(**{"train.step_mode": mode}), device, mode, k)
                losses = torch.stack([iteration(step.cr_active(i)) for i in range(1, 21)]).cpu()
            except Exception as err:
                print(f"equality {mode} K={k}: failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
                      flush=True)
                continue
            if reference is None:
                reference = losses
                print(f"equality K={k}: the eager path's 20 steps are the reference (losses of size "
                      f"{reference.nan_to_num(0.0).abs().max():.2f})", flush=True)
                continue
            diff = (losses - reference).abs().nan_to_num(0.0)
            print(f"equality {mode} vs eager, K={k}, 20 steps (tiny 32 px model, CR from step 11): max |diff| "
                  f"step 1 {diff[0].max():.2e}, steps 1-20 {diff.max():.2e} (losses of size "
                  f"{reference.nan_to_num(0.0).abs().max():.2f})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help="the first GPU check: dsprites at K = 1, 8, 32 on every path, mnist at K = 1, the CR "
                             "phase, the equality line; 1 s windows, no packing, a 230 s budget (< 4 min)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated: " + ", ".join(RECIPES))
    parser.add_argument("--paths", default=None, help="comma-separated step modes (default: eager,compiled and "
                                                      "graph on a GPU; eager,compiled on a CPU)")
    parser.add_argument("--members", default="1,8,32", help="comma-separated K for the first recipe (the others: 1)")
    parser.add_argument("--no-cr", dest="cr", action="store_false", help="skip InfoGAN-CR's phase")
    parser.add_argument("--pack", default="1,2,4,8", help="comma-separated K for the packing measurement ('' = skip)")
    parser.add_argument("--pack-recipe", default="dsprites", choices=sorted(RECIPES))
    parser.add_argument("--pack-path", default="eager", help="the step mode the packed processes run")
    parser.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--budget", type=float, default=None, help="seconds for all measurements (default: none; "
                                                                   "--quick: 230)")
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
    t_start = time.monotonic()
    if args.quick:
        args.recipes = args.recipes if "--recipes" in (argv or sys.argv) else "dsprites,mnist"
        args.seconds = min(args.seconds, 1.0)
        args.warmup = min(args.warmup, 3)
        args.pack = ""
        args.budget = 230.0 if args.budget is None else args.budget
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train() does
    args.recipes = [r for r in args.recipes.split(",") if r]
    args.paths = (args.paths.split(",") if args.paths else
                  ["eager", "compiled", "graph"] if device.type == "cuda" else ["eager", "compiled"])
    args.members = [int(k) for k in args.members.split(",") if k]
    args.pack = [int(k) for k in args.pack.split(",") if k]
    budget = Budget(args.budget if args.budget is not None else float("inf"))
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    versions = f"torch {torch.__version__}"
    if cuda:
        versions += (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
                     f"TF32 {'on' if recipe_config(args.recipes[0], device, 'eager', args.tiny).train.tf32 else 'off'}")
    print(f"device: {device} ({name}), {versions}, threads {torch.get_num_threads()}, "
          f"{'tiny models' if args.tiny else 'full recipes'}, fp32, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    peaks = {"fp32": matmul_peak_gflops(torch.float32, device=device, max_n=8192 if cuda else 2048)[0]}
    if cuda:
        peaks["bf16"] = matmul_peak_gflops(torch.bfloat16, device=device, max_n=8192)[0]
    print("matmul peak: " + ", ".join(f"{k} {v / 1e3:.2f} TFLOP/s" for k, v in peaks.items()), flush=True)
    measure_paths(args, device, peaks, budget)
    if cuda:
        measure_cudnn_benchmark(args, device, peaks, budget)
    if args.pack:
        measure_packing(args, budget)
    if not args.skip_equality:
        equality(args, device, budget)
    print(f"done in {time.monotonic() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
