"""Evaluation cost as a fraction of a trial's training time, with a real model, in one run.

Trains one trial of a preset with the metrics switched off (training time), then runs the full
evaluation suite (``infogan.metrics.evaluate.Evaluator``: categorical accuracy, MIG, FactorVAE,
BetaVAE, DCI, SAP, modularity, FID) on the trained G and Q — at the preset's metric sizes and,
unless ``--skip-standard``, at disentanglement_lib's standard sizes — and prints each time, the
metric values, and evaluation seconds ÷ training seconds. The FID feature net is trained (and
cached) before timing, since all trials share one.

    python benchmarks/eval_fraction.py                          # dsprites-quick preset
    python benchmarks/eval_fraction.py --preset dsprites --skip-standard
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from infogan.config import Config, EvalConfig
from infogan.data import load_dataset
from infogan.metrics.evaluate import Evaluator
from infogan.model import build
from infogan.presets import PRESETS
from infogan.train import train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dsprites-quick", choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-standard", action="store_true", help="only the preset's metric sizes")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        base = Config.from_flat({**PRESETS[args.preset]["overrides"], "train.device": "cpu",
                                 "train.threads": args.threads, "eval.cache_dir": f"{tmp}/cache"})
        quiet = base.replace(**{"eval.disentanglement": False, "eval.fid": False})
        t0 = time.perf_counter()
        result = train(quiet, run_dir=f"{tmp}/run")
        train_seconds = time.perf_counter() - t0
        print(f"preset {args.preset}: {quiet.train.steps} steps of batch {quiet.train.batch_size} "
              f"trained in {train_seconds:.1f} s ({result.images_per_second:.0f} images/s, "
              f"{quiet.train.steps // quiet.train.eval_every} evaluations per trial)")

        g, d = build(base.codes, base.model, learned_std=base.loss.q_std == "learned")
        from infogan import checkpoint

        state = checkpoint.load(result.checkpoint)
        g.load_state_dict(state.generator)
        d.load_state_dict(state.discriminator)
        dataset = load_dataset(base, "cpu")
        Evaluator(base, dataset, torch.device("cpu"))._fid_setup()  # train + cache the feature net

        standard = {f"eval.{k}": getattr(EvalConfig(), k)
                    for k in ("num_points", "num_test", "num_votes_train", "num_votes_eval", "vote_batch",
                              "fid_samples")}
        runs = [("preset sizes", base)] + ([] if args.skip_standard else [("standard sizes", base.replace(**standard))])
        for label, cfg in runs:
            evaluator = Evaluator(cfg, dataset, torch.device("cpu"))
            t0 = time.perf_counter()
            metrics = evaluator(g, d)
            seconds = time.perf_counter() - t0
            n_evals = cfg.train.steps // cfg.train.eval_every
            shown = " ".join(f"{k.removeprefix('eval/')}={v:.3f}" for k, v in metrics.items()
                             if k != "eval/seconds" and not k.endswith("_train"))
            print(f"{label:15s}: one evaluation {seconds:7.1f} s = {100 * seconds / train_seconds:6.1f}% of "
                  f"training; x{n_evals} evaluations per trial = {100 * n_evals * seconds / train_seconds:6.1f}%")
            print(f"{'':15s}  {shown}")


if __name__ == "__main__":
    main()
