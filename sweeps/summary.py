"""The sweep's answer where researchers look: the parent run's leaderboard and plots, and the
closing summary.

Owns the rows of a sweep's ended trials (from Tune's trials; ``sweeps.ranking`` ranks them and
renders the Markdown table, as it does for the analysis), the progress lines, the figures Optuna
draws from the sweep's study (parallel coordinates, hyperparameter importance, the Pareto front of
a multi-objective sweep), publishing them with the best trial's traversal to the MLflow parent run
(as the sweep goes, through ``ParentRunUpdater``, and at its end), the Optuna storage a sweep
keeps its study in, and the closing table printed for people (with the full JSON in a file).

Publishing never fails a sweep: a plot that cannot be drawn yet (one trial, no variation) or a
tracking hiccup is skipped with a warning, and the next completed trial tries again.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ray.tune

from infogan import metric_catalogue as catalogue
from infogan.config import Config, flat_value
from sweeps import ranking, record, tracking
from sweeps.tracking import SweepRef
from sweeps.uncertainty import MIN_TRIALS

logger = logging.getLogger(__name__)

# Metrics the leaderboard shows next to the objectives, when trials report them.
KEY_METRICS = catalogue.HEADLINE
ARTIFACT_DIR = "sweep"  # parent-run artifacts: sweep/leaderboard.{csv,md}, sweep/*.png
SUMMARY_FILE = "summary.json"  # beside Tune's state: the closing summary in full


# --------------------------------------------------------------------------------------------
# Optuna storage


def default_optuna_storage(tracking_uri: str, storage_path: str, name: str) -> str | None:
    """Where a sweep keeps its Optuna study when ``--optuna-storage`` is not given.

    A sqlite file next to a local MLflow store (``optuna.db`` beside ``mlflow.db``), else in the
    sweep's local Tune folder. The searcher lives in the driver only, so one sqlite writer is
    enough even on a cluster; remote Tune storage (s3://...) without a flag keeps the study in
    memory (None).
    """
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri[len('sqlite:///'):]).parent / 'optuna.db'}"
    if "://" not in storage_path:
        return f"sqlite:///{Path(storage_path).resolve() / name / 'optuna.db'}"
    return None


def dashboard_command(storage_url: str | None) -> str | None:
    """The command that serves the study in optuna-dashboard (``pip install optuna-dashboard``)."""
    return f"optuna-dashboard {storage_url}" if storage_url else None


def ensure_storage_dir(storage_url: str | None) -> None:
    """Create the folder of a sqlite storage file (sqlite creates the file, not its folder)."""
    if storage_url and storage_url.startswith("sqlite:///"):
        Path(storage_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def load_study(storage_url: str | None, name: str) -> Any:
    """The sweep's Optuna study from its storage, or None (in-memory storage, not created yet)."""
    if not storage_url:
        return None
    import optuna

    ensure_storage_dir(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage_url)
    except KeyError:  # no such study yet
        return None


# --------------------------------------------------------------------------------------------
# Leaderboard


def trial_rows(trials: Sequence[Any], metrics: Sequence[str], searched: Sequence[str]) -> Any:
    """Tune's ended trials as rows for ``sweeps.ranking``: the sweep's side of the leaderboard.

    Args:
        trials: Tune's ``Trial`` objects (a callback's ``trials``, or a restored experiment's).
        metrics: the objectives (shown as columns with the key metrics, where finite).
        searched: the searched config keys (shown as columns).
    Returns:
        A pandas frame in the trials' order: trial_id, status, seed, step, the objectives, the key
        metrics, the searched keys.
    """
    import pandas as pd

    from sweeps.trainable import ended_status, with_repeat_seed

    rows = []
    for trial in trials:
        status = ended_status(trial)
        if status is None:
            continue
        result = trial.last_result or {}
        config = with_repeat_seed(trial.config)
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": status,
                               "seed": config.get("train.seed", Config().train.seed), "step": result.get(record.STEP)}
        for m in dict.fromkeys([*metrics, *KEY_METRICS]):
            value = result.get(m)
            if isinstance(value, (int, float)) and math.isfinite(value):
                row[m] = float(value)
        row.update({k: flat_value(k, config[k]) if config.get(k) is not None else None for k in searched})
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Figures from the study


def study_figures(study: Any, multi_objective: bool, metric_names: Sequence[str]) -> dict[str, Any]:
    """Optuna's own plots of the study: parallel coordinates, hyperparameter importance (fANOVA),
    and for several objectives the Pareto front. A plot the study cannot support yet is left out."""
    import optuna
    from optuna.visualization import matplotlib as ovm

    figures: dict[str, Any] = {}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2 or not done[0].params:
        return figures
    target_name = ",".join(metric_names)
    plots = {"parallel_coordinates.png": lambda: ovm.plot_parallel_coordinate(
        study, target=(lambda t: t.values[0]) if multi_objective else None, target_name=metric_names[0])}
    if len(done) >= MIN_TRIALS["importance"]:  # below it fANOVA's forest splits seed noise (sweeps.uncertainty)
        plots["param_importances.png"] = lambda: ovm.plot_param_importances(
            study, target=(lambda t: t.values[0]) if multi_objective else None, target_name=metric_names[0])
    if multi_objective:
        plots["pareto_front.png"] = lambda: ovm.plot_pareto_front(study, target_names=list(metric_names))
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's matplotlib plots are marked experimental
                axes = draw()
            fig = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()  # Optuna's rotated axis labels are cut off otherwise
            figures[name] = fig
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as err:
            logger.info("sweep plot %s skipped: %s (%s)", name, err, target_name)
    return figures


def importances(study: Any) -> dict[str, float]:
    """Optuna's hyperparameter importances (fANOVA) of the first objective, or {} when there are
    too few trials for them to mean anything (``MIN_TRIALS['importance']``)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < MIN_TRIALS["importance"]:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(
                study, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None))
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        logger.info("importances skipped: %s", err)
        return {}


# --------------------------------------------------------------------------------------------
# Publishing to the parent run


def publish(mlflow_client: Any, ref: SweepRef, trials: Sequence[Any], metrics: Sequence[str], modes: Sequence[str],
            searched: Sequence[str], storage_url: str | None) -> Any:
    """Log the leaderboard (the ended trials best first by the first objective), the study's
    figures, the importances and the best trial's traversal to the parent run. Returns the
    leaderboard."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    board = ranking.ranked(trial_rows(trials, metrics, searched), metrics[0], ascending=modes[0] == "min")
    if board.empty:
        return board
    mlflow_client.log_text(ref.parent_run_id, board.to_csv(index=False), f"{ARTIFACT_DIR}/leaderboard.csv")
    mlflow_client.log_text(ref.parent_run_id, ranking.markdown_table(board), f"{ARTIFACT_DIR}/leaderboard.md")
    study = load_study(storage_url, ref.sweep)
    if study is not None:
        for name, fig in study_figures(study, len(metrics) > 1, metrics).items():
            mlflow_client.log_figure(ref.parent_run_id, fig, f"{ARTIFACT_DIR}/{name}")
            plt.close(fig)
        scores = importances(study)
        if scores:
            tracking.log_metrics(mlflow_client, ref.parent_run_id,
                                 {f"importance/{k}": v for k, v in scores.items()}, len(board))
    best = board.iloc[0]
    if metrics[0] in board.columns and isinstance(best.get(metrics[0]), float):
        tracking.log_metrics(mlflow_client, ref.parent_run_id, {f"best/{metrics[0]}": best[metrics[0]]}, len(board))
        mlflow_client.set_tag(ref.parent_run_id, record.TAG_BEST_TRIAL_ID, best["trial_id"])
        run_id = tracking.find_child_run(mlflow_client, ref, best["trial_id"])
        if run_id is not None:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    path = mlflow_client.download_artifacts(run_id, f"{record.ARTIFACT_FIGURES_DIR}/traversal.png", tmp)
                    mlflow_client.log_artifact(ref.parent_run_id, path, f"{ARTIFACT_DIR}/best_trial")
                except Exception as err:  # the best trial may not have logged its figure yet
                    logger.info("best trial's traversal not copied: %s", err)
    return board


class _ParentRunRefresh(ray.tune.Callback):
    """Refreshes part of the parent run (``_refresh``) whenever a trial ends (driver side).

    Picklable (Tune saves callbacks with the experiment; the MLflow client is made again after);
    never raises into Tune: the sweep matters more than its dashboard.
    """

    what = "dashboard"  # what a failed refresh's warning names
    ref: SweepRef
    _client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._update(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._update(trials)

    def _update(self, trials: list[Any]) -> None:
        try:
            if self._client is None:
                self._client = tracking.ResilientClient(tracking.client(self.ref.tracking_uri), patience=60.0,
                                                        what="MLflow (parent run refresh)")
            self._refresh(self._client, trials)
        except Exception as err:
            logger.warning("could not refresh the parent run's %s: %s", self.what, err)

    def _refresh(self, mlflow_client: Any, trials: list[Any]) -> None:
        raise NotImplementedError


class ParentRunUpdater(_ParentRunRefresh):
    """Refreshes the parent run's leaderboard and plots whenever a trial ends."""

    what = "leaderboard"

    def __init__(self, ref: SweepRef, metrics: Sequence[str], modes: Sequence[str], searched: Sequence[str],
                 storage_url: str | None):
        self.ref, self.metrics, self.modes = ref, list(metrics), list(modes)
        self.searched, self.storage_url = list(searched), storage_url

    def _refresh(self, mlflow_client: Any, trials: list[Any]) -> None:
        publish(mlflow_client, self.ref, trials, self.metrics, self.modes, self.searched, self.storage_url)


def publish_answer(mlflow_client: Any, ref: SweepRef, answer: Any) -> None:
    """Put the confirmation's answer (``sweeps.answer.Answer``) first on the parent run: its
    description (the run page opens with it), the ``infogan.answer`` tag (the verdict's first
    sentence, a column in the runs table), ``sweep/answer.md`` and the ``answer/...`` metrics."""
    text = answer.markdown()
    note = (f"## The answer of sweep {ref.sweep}\n\n{text}\n\nThe search's own leaderboard (one seed per trial): "
            f"`{ARTIFACT_DIR}/leaderboard.md`.")
    # A tag holds at most 8,000 characters; the whole answer is in sweep/answer.md either way.
    mlflow_client.set_tag(ref.parent_run_id, record.TAG_NOTE,
                          note if len(note) <= 7900 else note[:7800] + f"\n\n… (in full: `{ARTIFACT_DIR}/answer.md`)")
    mlflow_client.set_tag(ref.parent_run_id, record.TAG_ANSWER, answer.headline()[:4000])
    mlflow_client.log_text(ref.parent_run_id, text, f"{ARTIFACT_DIR}/answer.md")
    values = answer.mlflow_metrics()
    if values:
        tracking.log_metrics(mlflow_client, ref.parent_run_id, values, 0)


def publish_rungs(mlflow_client: Any, ref: SweepRef, correlations: Any, metric: str) -> None:
    """Log how each report step ranks the final ``metric`` (``sweeps.rungs``) on the parent run:
    ``rungs/<metric>_rho`` (with ``_low``, ``_high``, ``_n``) at each step, and the table."""
    if correlations.empty:
        return
    leaf = metric.rsplit("/", 1)[-1]
    rows = [{"step": int(r.step), f"rungs/{leaf}_n": float(r.n),
             **{f"rungs/{leaf}_{k}": float(getattr(r, k)) for k in ("rho", "low", "high") if math.isfinite(getattr(r, k))}}
            for r in correlations.itertuples()]
    tracking.log_metric_rows(mlflow_client, ref.parent_run_id, rows)
    mlflow_client.log_text(ref.parent_run_id, correlations.to_csv(index=False), f"{ARTIFACT_DIR}/rung_correlations.csv")


class AnswerUpdater(_ParentRunRefresh):
    """Refreshes the parent run's answer whenever a confirmation trial ends: the answer so far,
    over the seeds that have ended."""

    what = "answer"

    def __init__(self, ref: SweepRef, metrics: Sequence[str], plan: Any):
        self.ref, self.metrics, self.plan = ref, list(metrics), plan

    def _refresh(self, mlflow_client: Any, trials: list[Any]) -> None:
        from sweeps import confirm
        from sweeps.answer import compute_answer

        answer = compute_answer(confirm.answer_rows(trials, self.plan), confirm.answer_metrics(self.metrics),
                                {c.name: c.description for c in self.plan.candidates},
                                planned={c.name: len(self.plan.seeds) for c in self.plan.candidates},
                                steps=self.plan.steps)
        publish_answer(mlflow_client, self.ref, answer)


class ProgressPrinter(ray.tune.Callback):
    """One line per reported evaluation and per ended trial, with the sweep's objectives and the
    key metrics: the sweep's progress through Tune's public callback API (Tune's own console
    output is switched off; its legacy table reporter needed ``RAY_AIR_NEW_OUTPUT=0``). The
    confirmation's lines say so."""

    def __init__(self, total: int, metrics: Sequence[str], searched: Sequence[str], stage: str = record.STAGE_SEARCH):
        self.total, self.metrics, self.searched = total, list(metrics), list(searched)
        self.prefix = "" if stage == record.STAGE_SEARCH else f"{stage} "

    def _line(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {self.prefix}{text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        values = ", ".join(f"{k.split('.')[-1]}={_fmt(trial.config.get(k))}" for k in self.searched)
        self._line(f"trial {trial.trial_id} started ({values})")

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        shown = [m for m in dict.fromkeys([*self.metrics, *KEY_METRICS]) if m in result]
        values = " ".join(f"{m.removeprefix('eval/')}={_fmt(result[m])}" for m in shown)
        self._line(f"trial {trial.trial_id} step {result.get('step')}: {values}")

    @staticmethod
    def _ended(trials: list[Any], trial: Any) -> int:
        """How many of the stage's trials have ended, this one included: counted from Tune's trials,
        so a resumed sweep counts the trials that ended before it was interrupted."""
        return sum(1 for t in trials if t is trial or t.status in record.TUNE_ENDED)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(f"trial {trial.trial_id} ended ({self._ended(trials, trial)}/{self.total} trials ended)")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(f"trial {trial.trial_id} failed ({self._ended(trials, trial)}/{self.total} trials ended; its error is in MLflow "
                   "and Tune's trial folder)")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------------------------
# Closing output


def ui_urls(tracking_uri: str, experiment_id: str, run_id: str) -> tuple[str, str]:
    """The MLflow UI addresses of the sweep's experiment and parent run, in the model-training
    view (MLflow 3 opens experiments in its GenAI view unless the URL asks otherwise). A local
    store is shown by ``mlflow ui`` on its default address."""
    parsed = urlparse(tracking_uri)
    base = tracking_uri.rstrip("/") if parsed.scheme in ("http", "https") else "http://127.0.0.1:5000"
    view = "?workflowType=machine_learning"
    return (f"{base}/#/experiments/{experiment_id}{view}",
            f"{base}/#/experiments/{experiment_id}/runs/{run_id}{view}")


def _status_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none ended"


def closing_text(summary: Mapping[str, Any], board: Any, metrics: Sequence[str], searched: Sequence[str],
                 top: int = 5, answer: Any = None, rung_lines: Sequence[str] = ()) -> str:
    """The few lines a person reads at the end of a sweep: status counts per stage, the answer
    with its uncertainty (``sweeps.answer``, when a confirmation ran), the search's best trials
    with their key metrics and searched values, the Pareto front's trials (several objectives),
    and where to look next."""
    n = summary.get("trials", 0)
    head_line = f"sweep {summary['name']!r}: search {n} trial{'s' * (n != 1)} ({_status_text(summary.get('statuses', {}))})"
    if "confirm_statuses" in summary:
        confirmed = summary["confirm_statuses"]
        n = sum(confirmed.values())
        head_line += f"; confirmation {n} trial{'s' * (n != 1)} ({_status_text(confirmed)})"
    lines = [head_line]
    if answer is not None:
        lines += ["", answer.text()]
    if board is not None and not board.empty:
        shown = ["trial_id", "status", "seed", *[m for m in dict.fromkeys([*metrics, *KEY_METRICS]) if m in board.columns],
                 *[k for k in searched if k in board.columns]]
        head = board[shown].head(top).rename(columns=lambda c: c.removeprefix("eval/"))
        caveat = ("one seed per trial: the best of these is biased upwards by its selection; the answer above re-ran "
                  "it on fresh seeds" if answer is not None else
                  "one seed per trial: the best of these is the luckiest as much as the best (--confirm K re-runs "
                  "the top configs over seeds)")
        lines += ["", f"search, best {min(top, len(board))} by {metrics[0]} ({caveat}):",
                  head.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
    if rung_lines:
        lines += ["", *rung_lines]
    if summary.get("pareto_front"):  # several objectives: the answer is the front, not one ranking
        lines += ["", f"Pareto front of {', '.join(metrics)}: "
                  + ", ".join(str(row["trial_id"]) for row in summary["pareto_front"])]
    where = summary.get("where", {})
    lines += ["", *(f"{k:>16}: {v}" for k, v in where.items() if v)]
    return "\n".join(lines)
