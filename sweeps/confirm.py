"""The confirmation stage: after the search, re-train the configs it ranked best and the recipe's
own config with fresh seeds at the search's full budget, as Tune trials and MLflow child runs
tagged with their stage.

Owns choosing what to confirm (``plan_confirmation``: the top ``--confirm`` configs as the search
ranked them: by the furthest step they reached, then by the objective there, their seeds' mean
where ``--seeds`` repeated them, which is successive halving's own ranking, so that an ASHA search
that let fewer than K configs finish still names K; or K spread along the Pareto front of several
objectives; optionally the top ones per level of a knob, ``--confirm-per``), the plan kept beside
Tune's state so that ``--resume`` trains the same trials (``load_or_make_plan``), the searcher that
hands out the planned configs to the Tuner ``sweeps.tuner`` builds for them (the sweep's trainable,
resources and ensemble placement, no early
stopping) and the rows the answer is computed from (``answer_rows``; the answer itself is
``sweeps.answer``'s).

The seeds are fresh: every confirmation seed comes after the largest seed any search trial used,
since a config's search score on its own seed is biased upwards by the selection that picked it.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from ray.tune.search import Searcher

from infogan import metric_catalogue as catalogue
from infogan.config import Config, upgrade_saved
from sweeps import ranking, record, spaces
from sweeps.answer import describe_config
from sweeps.settings import SweepSettings

PLAN_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """A config the confirmation trains: ``recipe`` or ``top1``, ``top2``, ... (the search's order).

    Attributes:
        name: its label in the answer (and its runs' ``infogan.candidate`` tag).
        config: the flat config (typed as ``Config.to_flat`` gives it); the seed is set per trial.
        config_id: ``record.config_id`` of it (what its seeds share).
        source_trials: the search trials that ran this config (none for a recipe the search never tried).
        search_scores: the objectives' mean over those trials at ``search_step`` (the search's
            biased view of it).
        description: its searched knobs' values, as the answer shows them.
        search_step: the furthest step those trials reached (below the budget: ASHA stopped them).
    """

    name: str
    config: dict[str, Any]
    config_id: str
    source_trials: tuple[str, ...]
    search_scores: dict[str, float]
    description: str
    search_step: int = 0


@dataclass(frozen=True)
class Plan:
    """What the confirmation trains: each candidate with each seed, at ``steps``."""

    candidates: tuple[Candidate, ...]
    seeds: tuple[int, ...]
    steps: int

    def trial_configs(self) -> list[dict[str, Any]]:
        """The flat config of every planned trial, candidate by candidate, seed by seed."""
        return [{**c.config, "train.seed": seed} for c in self.candidates for seed in self.seeds]

    def labels(self) -> tuple[tuple[str, str], ...]:
        """``(config_id, candidate name)`` pairs: how a trial finds its candidate's name."""
        return tuple((c.config_id, c.name) for c in self.candidates)

    def to_json(self) -> dict[str, Any]:
        return {"version": PLAN_VERSION, "seeds": list(self.seeds), "steps": self.steps,
                "candidates": [{**asdict(c), "source_trials": list(c.source_trials)} for c in self.candidates]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"confirmation plan version {data.get('version')!r}: this code reads {PLAN_VERSION}")
        cands = tuple(Candidate(c["name"], dict(c["config"]), c["config_id"], tuple(c["source_trials"]),
                                dict(c["search_scores"]), c["description"], int(c.get("search_step", 0)))
                      for c in data["candidates"])
        return cls(cands, tuple(int(s) for s in data["seeds"]), int(data["steps"]))


# --------------------------------------------------------------------------------------------
# Choosing what to confirm


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's Tune config as a validated flat config (``--seeds``' repeat index resolved)."""
    from sweeps.trainable import with_repeat_seed

    return Config.from_flat(upgrade_saved(with_repeat_seed(config))).to_flat()


def recipe_config(settings: SweepSettings, space: spaces.SearchSpace) -> dict[str, Any]:
    """The recipe's own config in this sweep: the sweep's fixed values, with every searched knob
    at the published recipe's value (``spaces.recipe``) and the ties resolved."""
    recipe = spaces.recipe(settings.dataset)
    fixed = space.with_fixed({k: recipe[k] for k in space.params})
    return Config.from_flat(upgrade_saved(fixed(_NoTrial()))).to_flat()


class _NoTrial:
    """A trial for a space with nothing left to search (any suggestion is a bug)."""

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        raise AssertionError(f"{name} is still searched")

    suggest_int = suggest_categorical = suggest_float


def _ended(trials: Sequence[Any]) -> Iterator[tuple[Any, dict[str, Any], dict[str, Any], str]]:
    """The ended trials as (trial, last result, flat config, status); a trial whose config is not
    valid (it failed on it) is left out: there is nothing to confirm or to answer from."""
    from sweeps.trainable import ended_status

    for trial in trials:
        status = ended_status(trial)
        if status is None:
            continue
        try:
            config = flat_config(trial.config)
        except ValueError:
            continue
        yield trial, trial.last_result or {}, config, status


def search_table(trials: Sequence[Any], metrics: Sequence[str]) -> pd.DataFrame:
    """The search's ended trials: trial_id, status, seed, config_id, config and the objectives
    (from Tune's ``Trial`` objects: the driver's view)."""
    rows = []
    for trial, result, config, status in _ended(trials):
        row = {"trial_id": trial.trial_id, "status": status,
               "seed": int(config["train.seed"]), "config_id": record.config_id(config), "config": config,
               "step": int(result.get(record.STEP, 0))}
        for m in metrics:
            value = result.get(m)
            row[m] = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial_id", "status", "seed", "config_id", "config", "step", *metrics])


def fresh_seeds(table: pd.DataFrame, n: int, base: int) -> tuple[int, ...]:
    """``n`` seeds after every seed the search used (``base`` onwards when it used none)."""
    used = [int(s) for s in table["seed"]] if not table.empty else []
    start = max([base - 1, *used]) + 1
    return tuple(range(start, start + n))


RANKED_STATUSES = (record.STATUS_FINISHED, record.STATUS_STOPPED_EARLY)  # diverged or failed: nothing to confirm


def rank_configs(table: pd.DataFrame, metrics: Sequence[str], modes: Sequence[str]) -> pd.DataFrame:
    """The search's configs best first, as successive halving ranks them: one row per config id,
    by the furthest step its trials reached (``step``), then by the objectives' mean over its
    trials that reached it (``--seeds``). Several objectives (FIFO: every trial reaches the end):
    the Pareto front of those means only, ordered by the first objective."""
    ran = table[table["status"].isin(RANKED_STATUSES)]
    if ran.empty:
        return ran.assign(trials=[], first=[])
    furthest = ran.groupby("config_id")["step"].transform("max")
    ran = ran[ran["step"] == furthest]
    grouped = ran.groupby("config_id", sort=False)
    configs = grouped.agg(**{m: (m, "mean") for m in metrics}, step=("step", "max"), trials=("trial_id", tuple),
                          first=("config", "first")).reset_index()
    configs = configs[configs[list(metrics)].notna().all(axis=1)]
    if len(metrics) > 1:
        configs = ranking.non_dominated(configs[configs["step"] == configs["step"].max()], metrics, modes)
    by_objective = ranking.ranked(configs, metrics[0], ascending=modes[0] == "min", tiebreak=("config_id",))
    return by_objective.sort_values("step", ascending=False, kind="mergesort").reset_index(drop=True)  # stable


def pick(ranked: pd.DataFrame, k: int, spread: bool) -> pd.DataFrame:
    """The first ``k`` rows, or (``spread``: a Pareto front) ``k`` rows spread evenly along it,
    its two ends first."""
    if len(ranked) <= k or not spread:
        return ranked.head(k)
    index = sorted({int(round(i)) for i in np.linspace(0, len(ranked) - 1, k)})
    return ranked.iloc[index]


def plan_confirmation(settings: SweepSettings, space: spaces.SearchSpace, trials: Sequence[Any]) -> Plan | None:
    """What to confirm after this search: ``settings.confirm`` configs (per level of
    ``settings.confirm_per`` when set) and the recipe, each with ``settings.confirm_seeds``
    fresh seeds. None when confirmation is off or no search trial finished or was stopped early.

    Args:
        settings: the sweep's settings.
        space: its search space (for the recipe's config and the knobs shown).
        trials: the search's Tune trials.
    """
    if settings.confirm <= 0:
        return None
    table = search_table(trials, settings.metrics)
    ranked = rank_configs(table, settings.metrics, settings.modes)
    if ranked.empty:
        return None
    recipe = recipe_config(settings, space)
    recipe_id = record.config_id(recipe)
    others = ranked[ranked["config_id"] != recipe_id]
    spread = settings.multi_objective
    if settings.confirm_per:
        key = settings.confirm_per
        level = others["first"].map(lambda c: c.get(key))
        chosen = pd.concat([pick(others[level == value], settings.confirm, spread) for value in dict.fromkeys(level)])
        chosen = ranking.ranked(chosen, settings.metrics[0], ascending=settings.modes[0] == "min", tiebreak=("config_id",))
    else:
        chosen = pick(others, settings.confirm, spread)
    shown = list(dict.fromkeys([*space.params, *([settings.confirm_per] if settings.confirm_per else [])]))
    candidates = [_candidate(record.CANDIDATE_RECIPE, recipe, ranked, settings.metrics, shown)]
    for i, (_, row) in enumerate(chosen.iterrows(), start=1):
        candidates.append(_candidate(f"top{i}", row["first"], ranked, settings.metrics, shown))
    seeds = fresh_seeds(table, settings.confirm_seeds, base=int(recipe["train.seed"]))
    return Plan(tuple(candidates), seeds, settings.steps)


def _candidate(name: str, config: Mapping[str, Any], ranked: pd.DataFrame, metrics: Sequence[str],
               shown: Sequence[str]) -> Candidate:
    config = {k: v for k, v in config.items()}
    cid = record.config_id(config)
    match = ranked[ranked["config_id"] == cid]
    trials = tuple(match["trials"].iloc[0]) if not match.empty else ()
    scores = {m: float(match[m].iloc[0]) for m in metrics} if not match.empty else {}
    step = int(match["step"].iloc[0]) if not match.empty else 0
    return Candidate(name, config, cid, trials, scores, describe_config(config, shown), step)


def load_or_make_plan(settings: SweepSettings, space: spaces.SearchSpace, storage: str,
                      trials: Sequence[Any]) -> Plan | None:
    """The plan kept beside Tune's state (a resumed sweep trains what it planned), else a new one,
    kept there before any confirmation trial starts."""
    from sweeps.storage import read_storage_json, write_storage_json

    saved = read_storage_json(storage, settings.name, record.CONFIRM_PLAN_FILE)
    if saved is not None:
        return Plan.from_json(saved)
    plan = plan_confirmation(settings, space, trials)
    if plan is not None:
        write_storage_json(storage, settings.name, record.CONFIRM_PLAN_FILE, plan.to_json())
    return plan


# --------------------------------------------------------------------------------------------
# Training it


class PlannedConfigs(Searcher):
    """A Tune searcher that hands out a fixed list of configs, each once, then finishes.

    Its position is saved with the experiment, so a restored Tuner goes on where it stopped.
    """

    def __init__(self, configs: Sequence[Mapping[str, Any]]):
        super().__init__()
        self.configs = [dict(c) for c in configs]
        self.position = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.position >= len(self.configs):
            return self.FINISHED
        config = self.configs[self.position]
        self.position += 1
        return dict(config)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass  # nothing to learn: the plan is fixed

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump({"configs": self.configs, "position": self.position}, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        self.configs, self.position = state["configs"], state["position"]


def experiment_path(storage: str, name: str) -> str:
    """The confirmation's Tune experiment: ``<storage>/<sweep>/confirm``."""
    return f"{storage.rstrip('/')}/{name}/{record.CONFIRM_EXPERIMENT}"


# --------------------------------------------------------------------------------------------
# What the answer is computed from


def answer_rows(trials: Sequence[Any], plan: Plan) -> pd.DataFrame:
    """One row per ended confirmation trial: candidate, seed, status and its last reported
    metrics (a finished trial's are its final evaluation's)."""
    names = dict(plan.labels())
    rows = []
    for trial, result, config, status in _ended(trials):
        row: dict[str, Any] = {"trial_id": trial.trial_id, "candidate": names.get(record.config_id(config), "?"),
                               "seed": int(config["train.seed"]), "status": status}
        row.update({k: float(v) for k, v in result.items()
                    if k.startswith(record.METRIC_PREFIXES) and isinstance(v, (int, float)) and math.isfinite(v)})
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial_id", "candidate", "seed", "status"] if not rows else None)


def answer_metrics(objectives: Sequence[str]) -> list[str]:
    """The answer's metrics: the sweep's objectives first, then the catalogue's ``ANSWER`` set."""
    return list(dict.fromkeys([*objectives, *catalogue.ANSWER]))
