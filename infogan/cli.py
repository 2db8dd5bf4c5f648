"""The command lines: ``main`` of ``python -m infogan.train``, and the plumbing every CLI shares.

``main`` parses the training flags (``train_parser``, ``config_from_args``) and trains
(``run_training``: one run, or several seeds as the members of one step); ``python -m
infogan.evaluate`` parses with the same ``parse_args``, which turns an unknown ``--section.key``
flag into one line naming the closest keys.
Every expected failure is one ``error: ...`` line on stderr and an exit status from ``EXIT_*``.
The training loop itself knows nothing of this module.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from infogan import checkpoint as ckpt
from infogan.config import KEYS, Config, describe, parse_assignment, unknown_key_message
from infogan.loop import train_members
from infogan.presets import PRESETS
from infogan.run_writer import latest_checkpoint

EXIT_OK = 0
EXIT_DIVERGED = 1  # the run ended without finishing (diverged)
EXIT_USAGE = 2  # a bad flag or config value, a missing or unreadable file: one line on stderr (as argparse)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), with the command that resumes the run


def print_error(err: BaseException) -> None:
    """An expected failure as the one line every CLI prints: ``error: <message>`` on stderr."""
    print(f"error: {err}", file=sys.stderr)


def train_parser() -> argparse.ArgumentParser:
    """``python -m infogan.train``'s flags: presets, ``--set``, the run directory, ``--resume``, and
    every config key as ``--KEY V``."""
    parser = argparse.ArgumentParser(
        prog="python -m infogan.train",
        description="Train an InfoGAN (no Ray/Optuna/MLflow needed). Every config key is a flag.",
        epilog=(
            "examples:\n"
            "  python -m infogan.train                                  # InfoGAN-CR's dSprites recipe, 2,000 steps\n"
            "  python -m infogan.train --preset digits --train.seed 1   # official MNIST recipe on sklearn digits\n"
            "  python -m infogan.train --preset dsprites-32 --set loss.lambda_cr=2 --set loss.cr_start=10000\n"
            "  python -m infogan.train --preset mnist --data.root ~/data  # the same on MNIST IDX files\n"
            "  python -m infogan.train --preset dsprites-32 --preset eval-infogan-cr  # published metric protocol\n"
            "  python -m infogan.train --preset paper   # InfoGAN-CR's published protocol in one run (a GPU run)\n"
            "  python -m infogan.train --resume runs/x/checkpoints/step_00000500 --train.steps 2000\n"
            "  python -m infogan.train --resume runs/x/checkpoints/step_00288000 --loss.lambda_cr 2 \\\n"
            "      --loss.cr_start 288000 --train.steps 322560   # switch InfoGAN-CR on (a fresh classifier)\n"
            "  python -m infogan.train --preset dsprites --seeds 1,2,3,4 --out runs/seeds  # 4 seeds, one step\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --train.step must not silently mean --train.steps
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), action="append", default=None,
                        help="a named set of overrides applied before the flags, repeatable (later "
                             "presets override earlier ones): " + ", ".join(
                            f"{k} ({v['description']})" for k, v in sorted(PRESETS.items())))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="set a config key, repeatable (the sweep's syntax; the same as --KEY VALUE)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/<dataset>-<time>)")
    parser.add_argument("--resume", default=None,
                        help="checkpoint file or directory to continue from, with the config saved in it (flags "
                             "may change the budget, intervals and evaluation settings, and switch InfoGAN-CR "
                             "on or move its start before its phase begins)")
    parser.add_argument("--seeds", default=None, metavar="S1,S2,...",
                        help="train these seeds of the config as the members of one step (K-times larger "
                             "kernels: faster where a device is launch-bound, see infogan/speeds.py), each its own "
                             "run in <out>/seed<S>; Ctrl-C prints the command that resumes each of them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    defaults = Config().to_flat()
    for key in KEYS:
        parser.add_argument(f"--{key}", dest=key, default=None, metavar="V",
                            help=f"{describe(key)} (default {defaults[key]!r})")
    return parser


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """``base`` (default ``Config()``), then the presets in order, then ``--set`` and the key flags."""
    base = base or Config()
    for name in args.preset or []:
        base = Config.from_flat(PRESETS[name]["overrides"], base=base)
    flags = dict(parse_assignment(text) for text in getattr(args, "set", []) or [])
    flags.update({k: getattr(args, k) for k in KEYS if getattr(args, k) is not None})
    return Config.from_flat(flags, base=base)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
               config_flags: bool = True) -> argparse.Namespace:
    """``parser.parse_args`` with one line and a close match for an unknown ``--section.key`` flag
    instead of argparse's usage dump (exits 2, as argparse does).

    Args:
        parser: the CLI's parser (built with ``allow_abbrev=False``).
        argv: the arguments.
        config_flags: the CLI takes config keys as flags (``--loss.lambda_cat V``); otherwise
            they go through ``--set KEY=VALUE`` and the message says so.
    """
    args, unknown = parser.parse_known_args(argv)
    for arg in unknown:
        if arg.startswith("--"):
            key = arg[2:].partition("=")[0]
            if "." not in key:
                message = f"unknown flag {arg!r} (see --help)"
            elif config_flags:
                message = unknown_key_message(key, flag=True)
            else:
                message = f"unknown flag {arg!r}: config keys are set with --set KEY=VALUE; " + \
                    unknown_key_message(key).partition("; ")[2]
            parser.exit(EXIT_USAGE, f"error: {message}\n")
    if unknown:
        parser.exit(EXIT_USAGE, f"error: unexpected argument {unknown[0]!r} (see --help)\n")
    return args


def interrupted_message(out: Path | None, resume: str | None, steps: int | None) -> str:
    """The one line Ctrl-C leaves on stderr: where the run stopped and the command that continues it.

    Args:
        out: the run directory (None if Ctrl-C came before it was known).
        resume: the checkpoint this run resumed from, if any.
        steps: the run's budget (``train.steps``), if known.
    """
    latest = latest_checkpoint(out) if out is not None else None
    if out is None or (latest is None and resume is None):
        return "interrupted before the run's first checkpoint: nothing to resume; run the same command again"
    if latest is not None and latest[0] == steps:
        return f"interrupted after the last step ({steps}): the run is complete in {out}"
    # The checkpoint holds the config; --out keeps the run in its directory (without it, a resumed
    # run starts a new one) and --train.steps its budget (a run resumed with a new budget may not
    # have written a checkpoint holding it yet).
    command = ["python", "-m", "infogan.train", "--resume", str(latest[1] if latest else resume), "--out", str(out)]
    command += ["--train.steps", str(steps)] if steps is not None else []
    where = f"at step {latest[0]}" if latest else "before this run's first checkpoint"
    return f"interrupted {where}; resume with: {shlex.join(command)}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infogan.train``: the flags of ``train_parser``; every expected failure is one line
    and exit 2, a diverged run exits 1, Ctrl-C 130 (``run_training``)."""
    return run_training(parse_args(train_parser(), argv))


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds``: distinct training seeds ``1,2,3`` (None without the flag).

    Raises:
        ValueError: not a list of distinct integers >= 0 (one line).
    """
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: allowed is a list of distinct training seeds >= 0, e.g. 1,2,3")
    return seeds


def run_training(args: argparse.Namespace) -> int:
    """Train with the flags ``train_parser`` parsed: one run (``infogan.loop.train``'s case), or the
    seeds of ``--seeds`` as the members of one step (``infogan.loop.train_members``), each in its
    run directory ``<out>/seed<S>``. Every expected failure (config, data files, checkpoint, device)
    is one line and ``EXIT_USAGE``; a run that diverges exits ``EXIT_DIVERGED``; Ctrl-C exits
    ``EXIT_INTERRUPTED`` with, for each run, the command that resumes it (one line each: a member's
    checkpoint resumes as a run of its own); ``--debug`` shows tracebacks instead.

    Args:
        args: the parsed flags.
    Returns:
        The exit status.
    """
    runs: list[Path] = []
    steps: int | None = None
    try:
        # A resumed run starts from the checkpoint's own config: only the flags given change it,
        # and the loop refuses changes other than budget, bookkeeping and evaluation keys.
        base = Config.from_flat(ckpt.load(args.resume).config) if args.resume else None
        cfg = config_from_args(args, base)
        seeds = parse_seeds(getattr(args, "seeds", None))
        if seeds and args.resume:
            raise ValueError("--seeds with --resume: resume each seed's run with the command Ctrl-C printed for it "
                             "(python -m infogan.train --resume <its checkpoint> --out <its run directory>)")
        out = Path(args.out or f"runs/{cfg.data.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        cfgs = [cfg.replace(**{"train.seed": s}) for s in seeds] if seeds else [cfg]
        runs, steps = ([out / f"seed{s}" for s in seeds] if seeds else [out]), cfg.train.steps
        results = train_members(cfgs, runs, resume=[args.resume] if args.resume else None,
                                progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
        if args.debug:
            raise
        print_error(err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        for run in runs or [None]:
            print(interrupted_message(run, args.resume, steps), file=sys.stderr)
        return EXIT_INTERRUPTED
    summaries = [{"status": r.status, "step": r.step, "images_per_second": round(r.images_per_second, 1),
                  **{k: round(v, 4) for k, v in r.metrics.items() if math.isfinite(v)}} for r in results]
    if len(runs) == 1:
        print(json.dumps(summaries[0], indent=2))
    else:
        print(json.dumps({str(run): summary for run, summary in zip(runs, summaries, strict=True)}, indent=2))
    code = EXIT_OK
    for run, result in zip(runs, results, strict=True):
        if result.status != "finished":
            print(result.message, file=sys.stderr)
            print(f"run directory: {run} (last good checkpoint: {result.checkpoint})", file=sys.stderr)
            code = EXIT_DIVERGED
        else:
            print(f"run directory: {run}; figures: {run / 'figures' / 'traversal.png'}, "
                  f"{run / 'figures' / 'samples.png'}", file=sys.stderr)
    return code
