"""Search spaces as data: searched parameters, fixed values and ties, keyed by dotted config keys.

A ``SearchSpace`` is an Optuna define-by-run function: called with an Optuna trial it only calls
``trial.suggest_*`` (one call per searched key, the key being the parameter name) and returns the
fixed values, so Tune's trial config is exactly a flat ``Config.from_flat`` dict. It is a plain
picklable object because Tune checkpoints the searcher (and with it the space) for ``--resume``.

Also here, since they are data the CLI, tests and benchmarks share: per-dataset base spaces
(``base_space``) and budget presets (``BUDGETS``). Overrides come from the CLI
(``--set key=value``, ``--range key=lo:hi[:log]`` or ``key=a,b,c``) or a YAML/JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from infogan.config import (
    KEYS,
    Config,
    flat_value,
    parse_assignment,
    unknown_key_message,
    upgrade_saved,
    value_kind,
)

# The defaults' Python types decide whether a range is searched with suggest_int or suggest_float.


class SuggestTrial(Protocol):
    """The part of ``optuna.trial.Trial`` a space may use."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One searched key: a numeric range (``low``..``high``, optionally log scale) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (the form a space file uses)."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpace:
    """Searched params, fixed values and ties (``{"optim.lr_q": "optim.lr_g"}`` copies lr_g's value)."""

    params: Mapping[str, Param] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    ties: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, trial: SuggestTrial) -> dict[str, Any]:
        """Define-by-run: suggest every searched key and return the fixed (and tied) values.

        Args:
            trial: an Optuna trial (or anything with the same ``suggest_*`` methods).
        Returns:
            The fixed values and tied copies; Optuna/Tune merge them with the suggested ones.
        """
        suggested: dict[str, Any] = {}
        for key, p in self.params.items():
            if p.choices is not None:
                suggested[key] = trial.suggest_categorical(key, list(p.choices))
            elif value_kind(key) == "int":
                suggested[key] = trial.suggest_int(key, int(p.low), int(p.high), log=p.log)  # type: ignore[arg-type]
            else:
                suggested[key] = trial.suggest_float(key, float(p.low), float(p.high), log=p.log)  # type: ignore[arg-type]
        out = dict(self.fixed)
        for key, source in self.ties.items():
            out[key] = suggested[source] if source in suggested else self.fixed[source]
        return out

    # ---------------------------------------------------------------------------------------
    # Building and checking

    def with_fixed(self, values: Mapping[str, Any]) -> SearchSpace:
        """Fix keys (they stop being searched or tied)."""
        params = {k: v for k, v in self.params.items() if k not in values}
        ties = {k: v for k, v in self.ties.items() if k not in values}
        return replace(self, params=params, fixed={**self.fixed, **values}, ties=ties)

    def with_params(self, params: Mapping[str, Param]) -> SearchSpace:
        """Search keys (they stop being fixed or tied)."""
        fixed = {k: v for k, v in self.fixed.items() if k not in params}
        ties = {k: v for k, v in self.ties.items() if k not in params}
        return replace(self, params={**self.params, **params}, fixed=fixed, ties=ties)

    def validate(self) -> None:
        """Check every key exists and every bound/choice makes a valid ``Config``.

        Raises:
            ValueError: naming the key, the value and what is allowed.
        """
        for key in [*self.params, *self.fixed, *self.ties, *self.ties.values()]:
            if key not in KEYS:
                raise ValueError(unknown_key_message(key, " in the search space"))
        for key, source in self.ties.items():
            if source not in self.params and source not in self.fixed:
                raise ValueError(f"{key} is tied to {source}, which is neither searched nor fixed")
        for key, p in self.params.items():
            if p.choices is not None:
                if not p.choices:
                    raise ValueError(f"search range for {key} has no choices")
            elif p.low is None or p.high is None or not p.low <= p.high:
                raise ValueError(f"search range for {key} needs low <= high, got {p.low}..{p.high}")
            elif p.log and p.low <= 0:
                raise ValueError(f"log-scale search range for {key} needs low > 0, got {p.low}")
        base = self.sample_config()  # fixed values + every range's first value, checked together
        for key, p in self.params.items():
            for value in p.choices if p.choices is not None else (p.low, p.high):
                base.replace(**{key: value})  # raises ValueError naming key and value

    def sample_config(self) -> Config:
        """The config at every range's lower bound / first choice (a cheap whole-space check)."""
        flat = self(_LowestTrial())
        flat.update({k: p.choices[0] if p.choices is not None else p.low for k, p in self.params.items()})
        return Config.from_flat(flat)

    def max_images_per_step(self) -> int:
        """The most training work one step of any config in the space can do (``images_per_step``)."""
        def extremes(key: str) -> list[Any]:
            if key in self.params:
                p = self.params[key]
                return list(p.choices) if p.choices is not None else [p.low, p.high]
            return [self.sample_config().to_flat()[key]]

        return max(int(b) * (1 + int(g)) for b in extremes("train.batch_size") for g in extremes("train.g_steps"))

    def to_json(self) -> dict[str, Any]:
        """The JSON form logged as ``search_space.json`` and accepted by ``load_space_file``."""
        return {
            "params": {k: p.describe() for k, p in self.params.items()},
            "fixed": dict(self.fixed),
            "ties": dict(self.ties),
        }


class _LowestTrial:
    """A stand-in trial that answers every suggestion with its lowest value (validation only)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return low

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        return low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[0]


# --------------------------------------------------------------------------------------------
# Parsing overrides


def parse_set(text: str) -> tuple[str, Any]:
    """``"optim.lr_d=1e-3"`` -> ``("optim.lr_d", 0.001)`` (the syntax of ``infogan.config.parse_assignment``;
    the value in its flat form, ``infogan.config.flat_value``; cross-key checks come in ``validate()``)."""
    key, raw = parse_assignment(text)
    return key, flat_value(key, raw)


def parse_range(text: str) -> tuple[str, Param]:
    """``"loss.lambda_cat=0.1:10:log"`` -> a log-scale range; ``"train.batch_size=32,64"`` -> choices."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError(f"--range expects KEY=lo:hi[:log] or KEY=a,b,c with a config key, got {text!r}")
    if key not in KEYS:
        raise ValueError(f"--range: {unknown_key_message(key)}")
    if ":" in raw:
        parts = raw.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"--range {key}: expected lo:hi or lo:hi:log, got {raw!r}")
        low, high = (_number(key, parts[0]), _number(key, parts[1]))
        return key, Param(low=low, high=high, log=len(parts) == 3)
    choices = tuple(flat_value(key, c) for c in raw.split(",") if c.strip())
    return key, Param(choices=choices)


def _number(key: str, raw: str) -> float | int:
    """A range bound: the key's own value (``flat_value``), for a numeric key only."""
    if value_kind(key) not in ("int", "float"):
        raise ValueError(f"--range {key}: {key} is not numeric; use choices KEY=a,b,c")
    try:
        return flat_value(key, raw)
    except ValueError as err:
        raise ValueError(f"--range {key}: {err}") from None


def param_from_spec(key: str, spec: Mapping[str, Any]) -> Param:
    """A ``Param`` from a file entry: ``{low, high, log}`` or ``{choices: [...]}``."""
    unknown = set(spec) - {"low", "high", "log", "choices"}
    if unknown:
        raise ValueError(f"space entry {key}: unknown fields {sorted(unknown)}; allowed: low, high, log, choices")
    if "choices" in spec:
        return Param(choices=tuple(flat_value(key, c) for c in spec["choices"]))
    if "low" not in spec or "high" not in spec:
        raise ValueError(f"space entry {key}: needs low and high, or choices")
    return Param(low=_number(key, str(spec["low"])), high=_number(key, str(spec["high"])), log=bool(spec.get("log", False)))


def space_from_json(data: Mapping[str, Any], base: SearchSpace | None = None) -> SearchSpace:
    """A space from the ``to_json`` form or a flat mapping (a mapping value = searched, else fixed).

    Args:
        data: the parsed YAML/JSON.
        base: the space to override (default: an empty space).
    Returns:
        The overridden space (not yet validated).
    """
    space = base or SearchSpace()
    if set(data) <= {"params", "fixed", "ties"}:
        params, fixed, ties = data.get("params") or {}, data.get("fixed") or {}, data.get("ties") or {}
    else:
        params = {k: v for k, v in data.items() if isinstance(v, dict)}
        fixed = {k: v for k, v in data.items() if not isinstance(v, dict)}
        ties = {}
    fixed = upgrade_saved(fixed)  # a space saved by an older version (a sweep's --resume)
    space = space.with_fixed({k: flat_value(k, v) for k, v in fixed.items()})
    space = space.with_params({k: param_from_spec(k, v) for k, v in params.items()})
    return replace(space, ties={**space.ties, **ties})


def load_space_file(path: str | Path, base: SearchSpace | None = None) -> SearchSpace:
    """Read overrides from YAML or JSON on top of ``base``.

    The file is either ``{params: {...}, fixed: {...}, ties: {...}}`` (the ``to_json`` form) or one
    flat mapping where a mapping value is a searched param and a scalar value is fixed.

    Args:
        path: a ``.yaml``/``.yml`` or ``.json`` file.
        base: the space to override (default: an empty space).
    Returns:
        The overridden space (not yet validated).
    """
    text = Path(path).read_text()
    if Path(path).suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"space file {path}: expected a mapping at the top level")
    return space_from_json(data, base)


# --------------------------------------------------------------------------------------------
# Data: the default spaces per dataset and the budget presets


DATASETS = ("dsprites", "digits", "mnist", "fashion_mnist")


def recipe(dataset: str) -> dict[str, Any]:
    """The published recipe a dataset's sweep searches around, as flat config values.

    dSprites: InfoGAN-CR's "InfoGAN (modified)" (``Config()``'s defaults) at 32 px; the labelled
    datasets: the official InfoGAN MNIST code (``infogan.presets``' ``digits`` / ``mnist``).
    Budget keys (steps, intervals, evaluation sizes) come from the sweep's budget instead.
    """
    from infogan.presets import PRESETS

    if dataset == "dsprites":
        return {**Config().to_flat(), "data.name": "dsprites", "model.image_size": 32}
    if dataset in ("digits", "mnist", "fashion_mnist"):
        preset = PRESETS["digits" if dataset == "digits" else "mnist"]["overrides"]
        flat = Config.from_flat(preset).to_flat()
        return {**flat, "data.name": dataset}
    raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")


# Keys of a recipe that a sweep's budget sets instead (see BUDGETS).
_BUDGET_KEYS = ("train.steps", "train.eval_every", "train.checkpoint_every", "train.log_every", "data.eval_size")


def base_space(dataset: str) -> SearchSpace:
    """The default search space for a dataset: the published recipe, with the MI weights, the
    learning rates and the number of continuous codes searched over ranges around its values.

    Q's head is trained by D's optimiser in both recipes (``loss.q_update='with_d'``), so its rate
    is tied to D's (``optim.lr_q`` = ``optim.lr_d``), as in the official code.

    Args:
        dataset: ``dsprites`` (default; procedural, labels = shape), ``digits``, ``mnist`` or
            ``fashion_mnist`` (the last two need ``--set data.root=...``).
    Returns:
        An unvalidated ``SearchSpace``.
    """
    base = recipe(dataset)
    fixed = {k: v for k, v in base.items()
             if k not in _BUDGET_KEYS and not k.startswith("eval.") and k != "train.seed"}
    ties = {"optim.lr_q": "optim.lr_d"}
    if dataset == "dsprites":
        # Centred (on a log scale) on the recipe's lambda 0.05, lr_d 2e-3, lr_g 1e-3, 5 codes.
        params = {
            "loss.lambda_cont": Param(0.01, 0.25, log=True),
            "optim.lr_d": Param(5e-4, 8e-3, log=True),
            "optim.lr_g": Param(2.5e-4, 4e-3, log=True),
            "codes.n_continuous": Param(4, 6),
        }
    else:
        # Centred on the official code's lambda 1 (every code), lr_d 2e-4, lr_g 1e-3, 2 codes.
        params = {
            "loss.lambda_cat": Param(0.3, 3.0, log=True),
            "loss.lambda_cont": Param(0.1, 3.0, log=True),
            "optim.lr_d": Param(5e-5, 8e-4, log=True),
            "optim.lr_g": Param(2.5e-4, 4e-3, log=True),
            "codes.n_continuous": Param(1, 4),
        }
    fixed = {k: v for k, v in fixed.items() if k not in params and k not in ties}
    return SearchSpace(params=params, fixed=fixed, ties=ties)


# Budgets: fixed training-length and evaluation settings plus the sweep size and its confirmation;
# the networks, batch and optimiser stay the recipe's. "cpu" is the no-flag default: a search of 4
# trials of 300 steps, then the top 2 configs and the recipe over 3 fresh seeds each (9 trials of
# 300 steps), to fit README command 1 in 15 minutes on 2 cores with its confirmation (measured:
# docs/results/README.md, "The default sweep"; before the confirmation existed it was 6 trials of
# 2,000 steps, 9-17 minutes, whose best trial was one seed's luck). It stops nothing early: over 16
# trials of 400 steps that all reached the end, MIG at steps 50-200 ranked the final MIG no better
# than chance (Spearman rho -0.50 to 0.26, every interval across zero) and only from step 250
# sometimes did (rho 0.65 [0.18, 0.88]; 0.39 [-0.15, 0.75] at 300): ASHA's cut at a third of the
# budget was luck (docs/results/README.md, "Where ASHA's cuts mean something"). Its final evaluation computes
# the answer's metrics (MIG, FactorVAE, FID; the categorical ones where there is a code): BetaVAE
# and DCI were 13 of its 27 seconds, and `python -m infogan.evaluate` computes them on any
# checkpoint. "smoke" is CI's (two tiny trials), "gpu" is for a cluster (disentanglement_lib's
# standard evaluation sizes). Checkpoints coincide with evaluations because only evaluations are reported
# to Tune, and a checkpoint reaches Tune with a report. Evaluations before a trial's last step are
# staged (MIG on <= eval.intermediate_points, FID on eval.intermediate_fid_samples); the last
# one runs every metric at the budget's sizes.
_SMOKE_EVAL = {"eval.num_points": 300, "eval.num_test": 100, "eval.num_votes_train": 100, "eval.num_votes_eval": 50,
               "eval.vote_batch": 16, "eval.fid_samples": 200, "eval.fid_net_steps": 50,
               "eval.intermediate_points": 300, "eval.intermediate_fid_samples": 100}
# MIG on disentanglement_lib's 10,000 points at the end (5,000 in between); DCI, SAP and
# modularity/explicitness trained on 5,000 and tested on 2,000 (FactorVAE's global variances are
# estimated on those 5,000 too: eval.num_points); the vote-based metrics at 7% of the standard
# votes; FID on 2,000 images (500 in between). Measured (metrics_cost.py --sweep-budget cpu, AMD EPYC): with DCI & co. on 10,000 points the final evaluation of a
# 2,000-step trial took 24.6 s, DCI 8.7, BetaVAE 8.0, FactorVAE 5.2, modularity 2.9 s: 10.4% of
# the trial (9.0-10.3% in the sweep itself), over the 10% target; on 5,000 points 18.7 s, 7.3%
# (8.9-9.8% of each finished trial in the sweep, whose trials train on one thread each).
_CPU_EVAL = {"eval.num_points": 5_000, "eval.mig_points": 10_000, "eval.num_test": 2_000, "eval.num_votes_train": 700,
             "eval.num_votes_eval": 350, "eval.vote_batch": 64, "eval.fid_samples": 2_000, "eval.fid_net_steps": 400,
             "eval.intermediate_points": 5_000, "eval.intermediate_fid_samples": 500}
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {
        # No confirmation by default: CI's tests of the search stay two trials (tests/sweeps give
        # --confirm to smoke the confirmation).
        "num_samples": 2, "max_concurrent": 2, "confirm": 0, "confirm_seeds": 2,
        "fixed": {"model.width": 0.125, "train.steps": 20, "train.batch_size": 32, "train.eval_every": 10,
                  "train.checkpoint_every": 10, "train.log_every": 5, "data.eval_size": 200, **_SMOKE_EVAL},
    },
    "cpu": {
        "num_samples": 4, "max_concurrent": 2, "confirm": 2, "confirm_seeds": 3, "early_stopping": False,
        "fixed": {"train.steps": 300, "train.eval_every": 100, "train.checkpoint_every": 100, "train.log_every": 50,
                  "data.eval_size": 2000, **_CPU_EVAL, "eval.final": "categorical,mig,factor_vae,fid"},
    },
    "gpu": {
        "num_samples": 64, "max_concurrent": 8, "confirm": 2, "confirm_seeds": 5,
        "fixed": {"train.steps": 50_000, "train.eval_every": 2_500, "train.checkpoint_every": 2_500,
                  "train.log_every": 100, "data.eval_size": 5_000, "eval.intermediate_points": 10_000,
                  "eval.intermediate_fid_samples": 2_000},
    },
}
