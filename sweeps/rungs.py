"""Whether early evaluations predict the final one: the rank correlation between a metric at each
report step and its value at the end, over the trials that reached the end.

ASHA cuts trials by their metric at a rung; that is only as good as the rung's ranking of the
trials' final metric, which no scheduler checks by itself (HpBandSter and CAVE report the same
Spearman between budgets). This module owns measuring it: ``rung_correlations`` (pure: a long
frame of curves in, Spearman's rho with its interval per step out), ``store_curves`` (the curves
of every finished trial with the same budget in an MLflow store: this sweep's and earlier
sweeps'), ``asha_rungs`` (the steps ASHA judges at) and ``describe`` (the lines the sweep's
closing output and the report print). Only trials that reached the end count, so an ASHA sweep
contributes its survivors and its confirmation; sweeps without early stopping contribute all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from infogan import metric_catalogue as catalogue
from sweeps import record
from sweeps.uncertainty import MIN_TRIALS, spearman_interval

# The config keys two trials must share for their curves to be compared step by step.
BUDGET_KEYS = ("data.name", "model.image_size", "train.steps")  # eval_every only says where it is measured
COLUMNS = ["step", "n", "rho", "low", "high"]


def rung_correlations(curves: pd.DataFrame, final_step: int) -> pd.DataFrame:
    """Spearman's rho between each step's value and the final step's, over the trials that
    have both.

    Args:
        curves: one metric's long frame: ``trial_id``, ``step``, ``value`` (a step logged twice,
            by a retried trial, counts by its last value).
        final_step: the budget's last step; trials without a value there are left out.
    Returns:
        ``step``, ``n``, ``rho``, ``low``, ``high`` (95% interval), one row per step before the last.
    """
    if curves.empty:
        return pd.DataFrame(columns=COLUMNS)
    wide = curves.drop_duplicates(["trial_id", "step"], keep="last").pivot(index="trial_id", columns="step", values="value")
    if final_step not in wide.columns:
        return pd.DataFrame(columns=COLUMNS)
    final = wide[final_step]
    rows = []
    for step in sorted(s for s in wide.columns if s < final_step):
        rc = spearman_interval(wide[step].to_numpy(dtype=float), final.to_numpy(dtype=float))
        rows.append({"step": int(step), "n": rc.n, "rho": rc.rho, "low": rc.low, "high": rc.high})
    return pd.DataFrame(rows, columns=COLUMNS)


def asha_rungs(grace_steps: int, reduction_factor: int, steps: int) -> list[int]:
    """The steps ASHA judges trials at: grace, grace x eta, ... before the budget's end."""
    rungs, rung = [], grace_steps
    while 0 < rung < steps:
        rungs.append(rung)
        rung *= reduction_factor
    return rungs


def informative_step(correlations: pd.DataFrame, rho: float = 0.5) -> int | None:
    """The first step from which every later step's correlation is measured (at least
    ``MIN_TRIALS['spearman']`` trials) at or above ``rho`` with an interval above zero: the
    earliest rung worth cutting at. None when no step qualifies."""
    ok = [(int(r.step), bool(r.n >= MIN_TRIALS["spearman"] and r.rho >= rho and r.low > 0))
          for r in correlations.itertuples()]
    for i, (step, good) in enumerate(ok):
        if good and all(g for _, g in ok[i:]):
            return step
    return None


def store_curves(mlflow_client: Any, metric: str, budget: Mapping[str, Any]) -> pd.DataFrame:
    """The ``metric`` curves of every finished trial in the store with the same ``BUDGET_KEYS``
    values, whatever its sweep or stage.

    Args:
        mlflow_client: a client of the tracking store.
        metric: the reported metric (``eval/mig``).
        budget: the sweep's values of ``BUDGET_KEYS`` (flat config values).
    Returns:
        ``sweep``, ``trial_id``, ``stage``, ``step``, ``value``.
    """
    from infogan.config import value_text
    from sweeps import tracking

    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiments:
        return pd.DataFrame(columns=["sweep", "trial_id", "stage", "step", "value"])
    clauses = [f"tags.`{record.TAG_ROLE}` = '{record.ROLE_TRIAL}'",
               f"tags.`{record.TAG_STATUS}` = '{record.STATUS_FINISHED}'",
               *(f"params.`{k}` = '{value_text(budget[k])}'" for k in BUDGET_KEYS)]
    rows = []
    for start in range(0, len(experiments), 100):  # stores cap the experiments of one search
        for run in tracking.search_all(mlflow_client, experiments[start:start + 100], " and ".join(clauses)):
            tags = run.data.tags
            for point in mlflow_client.get_metric_history(run.info.run_id, metric):
                rows.append({"sweep": tags.get(record.TAG_SWEEP), "trial_id": tags.get(record.TAG_TRIAL_ID, run.info.run_id),
                             "stage": tags.get(record.TAG_STAGE, record.STAGE_SEARCH), "step": int(point.step),
                             "value": float(point.value)})
    frame = pd.DataFrame(rows, columns=["sweep", "trial_id", "stage", "step", "value"])
    return frame[frame["value"].map(math.isfinite)] if not frame.empty else frame


def describe(correlations: pd.DataFrame, metric: str, rungs: Sequence[int], sweeps: int,
             where: str = "in this store") -> list[str]:
    """The lines that say how each report step ranks the final ``metric``, rungs marked.

    Args:
        correlations: ``rung_correlations``' frame.
        metric: the metric measured.
        rungs: ASHA's rung steps in this sweep (empty without ASHA).
        sweeps: how many sweeps the trials came from.
        where: where those sweeps are (the sweep: its tracking store; the report: its tables).
    """
    label = catalogue.label(metric)
    if correlations.empty or correlations["n"].max() < 3:
        n = 0 if correlations.empty else int(correlations["n"].max())
        return [f"How early {label} ranks the final {label}: not measured yet ({n} trials reached the end with this "
                f"budget {where}; sweeps without early stopping and confirmations add them)."]
    n = int(correlations["n"].max())
    lines = [f"How {label} at each report step ranks the final {label} (Spearman rho [95% interval] over the {n} "
             f"trials with this budget that reached the end, from {sweeps} sweep{'s' * (sweeps != 1)} {where}"
             + ("; * = an ASHA rung of this sweep" if rungs else "") + "):"]
    for r in correlations.itertuples():
        mark = " *" if int(r.step) in rungs else ""
        if r.n < MIN_TRIALS["spearman"]:
            lines.append(f"  step {int(r.step):,}{mark}: not meaningful at n = {int(r.n)} "
                         f"(needs {MIN_TRIALS['spearman']} trials)")
        else:
            lines.append(f"  step {int(r.step):,}{mark}: rho = {r.rho:.2f} [{r.low:.2f}, {r.high:.2f}] (n = {int(r.n)})")
    weak = [int(r.step) for r in correlations.itertuples()
            if int(r.step) in rungs and r.n >= MIN_TRIALS["spearman"] and not r.low > 0]
    if weak:
        lines.append(f"  ASHA's cut at step {weak[0]:,} is not shown to rank the final {label} better than chance: "
                     "a later --grace-period, or --scheduler fifo, keeps trials it would cut by luck.")
    return lines
