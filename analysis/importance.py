"""Which knobs mattered: Optuna's hyperparameter importance (fANOVA by default) of a metric,
computed from the trials table alone.

The trials are loaded into an in-memory Optuna study (each searched key's distribution inferred
from its values: log-scaled floats when they span more than a decade), so the report needs no
access to the sweep's study database; the sweep itself logs the same importances on its parent
run from the live study.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.ranking import check_fid_comparable, lower_is_better, resolve


def _distribution(values: pd.Series):
    import optuna

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and not values.map(lambda v: isinstance(v, bool)).any():
        lo, hi = float(numeric.min()), float(numeric.max())
        if (numeric == numeric.round()).all() and np.issubdtype(values.dtype, np.integer):
            return optuna.distributions.IntDistribution(int(lo), int(hi))
        return optuna.distributions.FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 10)
    return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in values}))


def param_importances(trials: pd.DataFrame, params: Sequence[str], metric: str,
                      evaluator: str = "fanova", seed: int = 0) -> pd.DataFrame:
    """Importance of each varying knob for ``metric`` over the given trials.

    Args:
        trials: trials frame (rows with the metric missing are left out).
        params: candidate knobs; those that do not vary are left out.
        metric: column or bare metric.
        evaluator: ``fanova`` (Optuna's default) or ``ped_anova``.
        seed: the evaluator's seed (fANOVA fits a random forest).
    Returns:
        ``param``, ``importance`` (summing to 1), best first.
    Raises:
        ValueError: fewer than 3 trials, or no knob varies.
    """
    import optuna

    col = resolve(trials, metric)
    df = trials[trials[col].notna()]
    check_fid_comparable(df, [col])
    varying: list[str] = []
    for p in params:
        if p not in df.columns or df[p].nunique(dropna=True) < 2 or not df[p].notna().all():
            continue
        if any(df[p].equals(df[q]) for q in varying):
            continue  # a tied knob (optim.lr_q = optim.lr_d): one column, or they split its importance
        varying.append(p)
    if len(df) < 3 or not varying:
        raise ValueError(f"importance needs at least 3 trials with {col} and a knob that varies "
                         f"(have {len(df)} trials, varying: {', '.join(varying) or 'none'})")
    distributions = {p: _distribution(df[p]) for p in varying}
    study = optuna.create_study(direction="minimize" if lower_is_better(col) else "maximize")
    for _, row in df.iterrows():
        values = {p: (str(row[p]) if isinstance(distributions[p], optuna.distributions.CategoricalDistribution)
                      else (int(row[p]) if isinstance(distributions[p], optuna.distributions.IntDistribution)
                            else float(row[p]))) for p in varying}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions, value=float(row[col])))
    make = {"fanova": optuna.importance.FanovaImportanceEvaluator,
            "ped_anova": optuna.importance.PedAnovaImportanceEvaluator}[evaluator]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental
        scores = optuna.importance.get_param_importances(
            study, evaluator=make(seed=seed) if evaluator == "fanova" else make())
    out = pd.DataFrame({"param": list(scores), "importance": [float(v) for v in scores.values()]})
    return out[out["importance"].map(math.isfinite)].reset_index(drop=True)
