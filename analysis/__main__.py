"""Command line of the analysis package: ``python -m analysis {collect,codes,report,runs,select-categorical} --help``."""

from __future__ import annotations

import argparse
import sys
import time

from infogan import metric_catalogue as catalogue

_EPILOG_COLLECT = """examples:
  python -m analysis collect --tracking-uri sqlite:///mlflow.db --sweep lambda_search --out tables/
  python -m analysis collect --tracking-uri http://head:5000 --parent-run-id 0a1b2c... \\
      --tune-dir /shared/ray_results/lambda_search --out tables/
writes <out>/<sweep>/trials.parquet and <out>/<sweep>/curves.parquet (atomically; re-running
with the same records gives identical files). Without --tracking-uri the store is the sweep's
default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the current folder."""

_EPILOG_CODES = """examples:
  python -m analysis codes --tracking-uri sqlite:///mlflow.db --tables tables/ --sweep lambda_search
  python -m analysis codes --tables tables/ --sweep lambda_search --n-images 2000 --out /tmp/codes.npz
downloads each trial's checkpoint/checkpoint.pt from MLflow (finished trials upload one; the others
are listed as skipped), applies Q to the same fixed real images and writes one (N, D) array per
trial id to <tables>/<sweep>/codes.npz: the input of ModelCentrality (sweep_deep_dive.ipynb)."""

_EPILOG_REPORT = """examples:
  python -m analysis report --tables tables/ --sweep lambda_search --out reports/lambda_search
  python -m analysis report --tables tables/lambda_search --metric eval/factor_vae --param optim.lr_g --format svg
  python -m analysis report --tables tables --sweep lambda_study --param loss.lambda_cont --by loss.lambda_cr"""


_EPILOG_RUNS = """examples:
  python -m analysis runs runs/curves/dsprites32-seed1 runs/curves/dsprites32-seed2 --out docs/results
  python -m analysis runs runs/x --metric eval/mig --metric eval/fid --name x_curves
reads each run directory's eval_final.jsonl (python -m infogan.evaluate; else the run's own
eval.jsonl) and metrics.json, groups runs by what differs apart from the seed, and writes
<out>/<name>.png (one panel per metric against steps) and <out>/<name>.md (per group and step:
mean over seeds and each seed's value; per run: training steps/s)."""

# The same resolution as the sweep's (sweeps.tracking.resolve_tracking_uri), so a sweep and its
# analysis run from one folder find one store without flags.
_URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the current folder)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description="Tables, comparisons and reports for InfoGAN sweeps.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("collect", help="MLflow (+ Tune) records of a sweep -> Parquet tables",
                       epilog=_EPILOG_COLLECT, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--tracking-uri", default=None, help=_URI_HELP)
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--sweep", help="sweep name (= experiment name unless --experiment is given)")
    who.add_argument("--parent-run-id", help="the sweep's parent run id")
    c.add_argument("--experiment", default=None, help="experiment name when it differs from the sweep name")
    c.add_argument("--tune-dir", default=None, help="Tune experiment folder <storage_path>/<sweep>/ (optional)")
    c.add_argument("--out", default="tables", help="output folder (default: tables/)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")

    k = sub.add_parser("codes", help="each trained model's codes on the same real images -> codes.npz (ModelCentrality)",
                       epilog=_EPILOG_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    k.add_argument("--tracking-uri", default=None, help=_URI_HELP)
    k.add_argument("--tables", default="tables", help="folder `collect` wrote (default: tables/)")
    k.add_argument("--sweep", required=True, help="sweep name (its tables are <tables>/<sweep>/)")
    k.add_argument("--n-images", type=int, default=1000, help="real images per model (default: 1000)")
    k.add_argument("--out", default=None, help="output .npz (default: <tables>/<sweep>/codes.npz)")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")

    r = sub.add_parser("report", help="Markdown report (tables + figures) for one sweep",
                       epilog=_EPILOG_REPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--tables", default="tables", help="folder of collected tables (default: tables/)")
    r.add_argument("--sweep", default=None, help="sweep to report (needed when the tables hold several)")
    r.add_argument("--out", default=None, help="output folder (default: reports/<sweep>)")
    r.add_argument("--metric", default=catalogue.DEFAULT_METRIC,
                   help=f"ranking metric (default: {catalogue.DEFAULT_METRIC})")
    r.add_argument("--fid", default=catalogue.FID, help=f"FID metric (default: {catalogue.FID})")
    r.add_argument("--param", default=None,
                   help="knob whose effect to show (default: the first numeric knob the sweep searched, from the "
                        "search_space.json collected beside its tables)")
    r.add_argument("--top", type=int, default=10, help="leaderboard length (default: 10)")
    r.add_argument("--by", action="append", default=[],
                   help="second knob of the study table, repeatable (e.g. loss.lambda_cr: InfoGAN vs InfoGAN-CR)")
    r.add_argument("--status", action="append", default=None,
                   help="status of trials to compare, repeatable (default: finished); 'all' for every trial")
    r.add_argument("--format", choices=("png", "svg"), default="png", help="figure format")

    u = sub.add_parser("runs", help="learning curves of standalone run directories -> figure + Markdown table",
                       epilog=_EPILOG_RUNS, formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("run_dirs", nargs="+", help="directories written by python -m infogan.train --out")
    u.add_argument("--out", default="reports", help="output folder (default: reports/)")
    u.add_argument("--name", default="learning_curves", help="file name stem (default: learning_curves)")
    u.add_argument("--metric", action="append", default=None,
                   help="metric to plot, repeatable (default: those of "
                        f"{', '.join(catalogue.HEADLINE)} the runs evaluated)")
    s = sub.add_parser("select-categorical", help="label-free pick among seeds' run directories by their categorical "
                       "code (agreement between seeds), judged against the labels")
    s.add_argument("run_dirs", nargs="+", help="run directories of one config's seeds (python -m infogan.train --out)")
    s.add_argument("--out", default="reports", help="output folder (default: reports/)")
    s.add_argument("--name", default="selection", help="file name stem of <out>/<name>.md and .png")
    s.add_argument("--n-images", type=int, default=0, help="real images (default: the runs' data.eval_size)")
    s.add_argument("--step", type=int, default=None, help="checkpoint step (default: each run's latest)")
    s.add_argument("--subset-size", type=int, default=8,
                   help="also repeat the pick on every subset of this many runs, when there are more (default: 8)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        Process exit code.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "collect":
            from analysis.collect import collect

            t0 = time.perf_counter()
            res = collect(args.tracking_uri, sweep=args.sweep, parent_run_id=args.parent_run_id,
                          experiment=args.experiment, tune_dir=args.tune_dir, out_dir=args.out,
                          progress=not args.no_progress)
            print(f"sweep {res.sweep!r}: {res.trials.num_rows} trials, {res.curves.num_rows} curve points "
                  f"in {time.perf_counter() - t0:.1f} s")
            for kind, path in res.paths.items():
                print(f"  {kind}: {path}")
        elif args.command == "codes":
            from analysis.trial_codes import collect_codes
            from sweeps.tracking import no_download_bars

            if args.n_images < 2:
                raise ValueError(f"--n-images={args.n_images}: need at least 2 images")
            with no_download_bars():  # one bar (ours, over trials), not MLflow's per-checkpoint bars
                got = collect_codes(args.tracking_uri, args.tables, args.sweep, n_images=args.n_images, out=args.out,
                                    progress=not args.no_progress)
            shapes = ", ".join(f"{tid} {arr.shape}" for tid, arr in sorted(got.codes.items()))
            print(f"codes of {len(got.codes)} trials ({shapes}); {len(got.skipped)} skipped")
            print(f"  codes: {got.path}")
        elif args.command == "select-categorical":
            from analysis.categorical_selection import write_selection

            page, figure, j = write_selection(args.run_dirs, args.out, args.name, args.n_images, args.step,
                                             args.subset_size)
            print(f"pick {j.selected}: accuracy {j.selected_accuracy:.3f} (median {j.median_accuracy:.3f}, best "
                  f"{j.best_accuracy:.3f}, n = {j.n})\ntable: {page}\nfigure: {figure}")
        elif args.command == "runs":
            from analysis.runs import write_curves

            figure, table = write_curves(args.run_dirs, args.out, args.name, args.metric)
            print(f"figure: {figure}\ntable: {table}")
        else:
            from analysis.report import write_report

            out = args.out or f"reports/{args.sweep or 'sweep'}"
            path = write_report(args.tables, out, sweep=args.sweep, metric=args.metric, fid=args.fid,
                                param=args.param, top=args.top, fmt=args.format, by=tuple(args.by),
                                statuses=None if args.status == ["all"] else tuple(args.status or ("finished",)))
            print(f"report: {path}")
    except (ValueError, KeyError, OSError) as exc:  # OSError: missing files, an unwritable --out
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, OSError) and exc.filename and exc.strerror:  # name the path first, then why
            message = f"cannot use {exc.filename}: {exc.strerror}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
