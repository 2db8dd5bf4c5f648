"""Evaluate saved checkpoints on demand: ``python -m infogan.evaluate CHECKPOINT_OR_RUN ...``.

The full suite (``eval.final``) runs on any checkpoint, with the checkpoint's own config and, on
top, only evaluation settings: ``eval.*`` keys, ``data.eval_size`` / ``data.root`` and where
it runs (``train.device``, ``train.threads``); an ``eval-*`` preset names a published protocol.
Given a run directory, every checkpoint of it is evaluated in step order. Each result is one JSON
line appended to ``<run>/eval_final.jsonl`` (with the evaluation settings it used), and a
checkpoint already evaluated there with the same settings is skipped, so an interrupted pass
resumes where it stopped and a learning curve can be scored after (or beside) training.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from infogan import checkpoint as ckpt
from infogan.cli import EXIT_OK, EXIT_USAGE, parse_args, print_error
from infogan.config import KEYS, Config, describe, key_role, parse_assignment
from infogan.data import load_dataset
from infogan.loop import resolve_device
from infogan.metrics.suite import Evaluator
from infogan.model import build
from infogan.presets import PRESETS, is_eval_preset

RESULTS = "eval_final.jsonl"


def is_eval_only(key: str) -> bool:
    """What an evaluation may change on a saved run, by the key's role (``infogan.config``):
    evaluation sizes and protocol and the labelled eval set, where the data files are and the
    threads (machine), and the device it runs on. Anything else would score another model."""
    return key_role(key) in ("evaluation", "machine") or key == "train.device"


def checkpoints_of(path: Path) -> list[Path]:
    """The checkpoint directories a path names: itself, or every ``checkpoints/step_*`` of a run."""
    if (path / ckpt.FILENAME).is_file() or path.is_file():
        return [path]
    found = sorted((path / "checkpoints").glob("step_*"))
    if not found:
        raise FileNotFoundError(f"{path} is neither a checkpoint nor a run directory with checkpoints/step_*")
    return found


def run_dir_of(checkpoint_dir: Path) -> Path:
    """``<run>/checkpoints/step_N`` -> ``<run>``; a loose checkpoint keeps its results beside it."""
    checkpoint_dir = checkpoint_dir if checkpoint_dir.is_dir() else checkpoint_dir.parent
    return checkpoint_dir.parent.parent if checkpoint_dir.parent.name == "checkpoints" else checkpoint_dir


def _settings(cfg: Config) -> dict[str, Any]:
    flat = cfg.to_flat()
    return {k: flat[k] for k in sorted(flat) if key_role(k) == "evaluation"}


def _done(results: Path, settings: dict[str, Any]) -> set[int]:
    if not results.is_file():
        return set()
    steps = set()
    for line in results.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash: evaluate that step again
            continue
        if row.get("settings") == settings:
            steps.add(int(row["step"]))
    return steps


def evaluate_checkpoint(state: ckpt.TrainingState, overrides: dict[str, Any]
                        ) -> tuple[Config, dict[str, float], dict[str, str]]:
    """Rebuild G and D/Q from a loaded checkpoint and run the final evaluation suite on them.

    Args:
        state: what ``checkpoint.load`` returned.
        overrides: evaluation-only dotted keys applied on top of the checkpoint's config.
    Returns:
        The config used, the ``eval/`` metrics and their tags (the FID's feature network).
    """
    cfg = Config.from_flat(overrides, base=Config.from_flat(state.config))
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    g, d = build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned")
    g.load_state_dict(state.generator)
    d.load_state_dict(state.discriminator)
    g.to(device)
    d.to(device)
    evaluator = Evaluator(cfg, load_dataset(cfg, device), device)
    metrics = evaluator(g, d, final=True)
    tags = {"fid_feature_net": evaluator.feature_net_id} if evaluator.feature_net_id else {}
    return cfg, metrics, tags


def evaluate_paths(paths: Sequence[Path], overrides: dict[str, Any], force: bool = False) -> Iterator[dict[str, Any]]:
    """Evaluate every checkpoint the paths name, appending to each run's ``eval_final.jsonl``.

    Yields:
        One result row per checkpoint evaluated: ``{"step", "checkpoint", "settings", eval/...,
        "fid_feature_net"}``.
    """
    for path in paths:
        for checkpoint_dir in checkpoints_of(path):
            state = ckpt.load(checkpoint_dir)
            settings = _settings(Config.from_flat(overrides, base=Config.from_flat(state.config)))
            results = run_dir_of(checkpoint_dir) / RESULTS
            if not force and state.step in _done(results, settings):
                continue
            _, metrics, tags = evaluate_checkpoint(state, overrides)
            row = {"step": state.step, "checkpoint": str(checkpoint_dir), "settings": settings, **metrics, **tags}
            with open(results, "a") as fh:  # one whole line per write; a torn last line is skipped on read
                fh.write(json.dumps(row) + "\n")
            yield row


def build_parser() -> argparse.ArgumentParser:
    eval_presets = sorted(name for name in PRESETS if is_eval_preset(name))
    parser = argparse.ArgumentParser(
        prog="python -m infogan.evaluate",
        description="Run the full evaluation suite on saved checkpoints (a checkpoint, or every "
                    "checkpoint of a run directory); results go to <run>/eval_final.jsonl.",
        epilog=(
            "examples:\n"
            "  python -m infogan.evaluate runs/x/checkpoints/step_00002000\n"
            "  python -m infogan.evaluate runs/x runs/y --preset eval-dlib      # every checkpoint, standard sizes\n"
            "  python -m infogan.evaluate runs/x --preset eval-infogan-cr         # InfoGAN-CR's published protocol\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("paths", nargs="+", type=Path, help="checkpoint files/directories or run directories")
    parser.add_argument("--preset", choices=eval_presets, action="append", default=None,
                        help="an evaluation protocol, repeatable: " + ", ".join(
                            f"{k} ({PRESETS[k]['description']})" for k in eval_presets))
    parser.add_argument("--force", action="store_true", help="evaluate again checkpoints already in eval_final.jsonl")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="set an evaluation key, repeatable (the same as --KEY VALUE)")
    defaults = Config().to_flat()
    for key in KEYS:
        if is_eval_only(key):
            parser.add_argument(f"--{key}", dest=key, default=None, metavar="V",
                                help=f"{describe(key)} (default: the checkpoint's; Config default {defaults[key]!r})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    overrides: dict[str, Any] = {}
    for name in args.preset or []:
        overrides.update(PRESETS[name]["overrides"])
    try:
        overrides.update(parse_assignment(text) for text in args.set)
        refused = [k for k in overrides if not is_eval_only(k)]
        if refused:
            raise ValueError(f"--set {refused[0]}: only evaluation settings may change on a saved run (eval.*, "
                             f"{', '.join(sorted(k for k in KEYS if is_eval_only(k) and not k.startswith('eval.')))})")
        overrides.update({k: getattr(args, k) for k in KEYS if is_eval_only(k) and getattr(args, k) is not None})
        Config.from_flat(overrides)  # bad values fail before any checkpoint is read
        t0 = time.perf_counter()
        n = 0
        for row in evaluate_paths(args.paths, overrides, args.force):
            n += 1
            shown = {k: round(v, 4) for k, v in row.items() if k.startswith("eval/") and math.isfinite(v)}
            print(json.dumps({"step": row["step"], **shown}), flush=True)
    except (ValueError, FileNotFoundError) as err:
        print_error(err)
        return EXIT_USAGE
    print(f"evaluated {n} checkpoint(s) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
