"""The Optuna sampler a sweep searches with (``--search``) and its options."""

from __future__ import annotations

from typing import Any

import optuna

from sweeps import spaces
from sweeps.settings import SweepSettings


def startup_trials(num_samples: int) -> int:
    """TPE's random start-up trials: a third of the sweep, between 3 and Optuna's default 10."""
    return min(10, max(3, num_samples // 3))


def sampler_options(settings: SweepSettings) -> dict[str, Any]:
    """The options of the sweep's sampler (seeded; TPE multivariate with a short start-up)."""
    if settings.search == "tpe":
        # Multivariate TPE models the lambdas and learning rates jointly (they interact). Its
        # random start-up phase (Optuna's default: 10 trials) is shortened for small sweeps, or a
        # 12-trial CPU sweep would be random search with TPE guiding the last two trials only.
        return {"seed": settings.seed, "multivariate": True, "n_startup_trials": startup_trials(settings.num_samples)}
    return {"seed": settings.seed}


def make_sampler(settings: SweepSettings, space: spaces.SearchSpace | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``--search`` names, with ``sampler_options``.

    Args:
        settings: the sweep's settings (``search``, ``seed``, ``num_samples``).
        space: the search space; a grid sampler spans its choices.

    Returns:
        A seeded sampler.
    """
    options = sampler_options(settings)
    if settings.search == "random":
        return optuna.samplers.RandomSampler(**options)
    if settings.search == "grid":
        if space is None:
            raise ValueError("a grid sampler needs the search space")
        return optuna.samplers.GridSampler({k: list(p.choices or ()) for k, p in space.params.items()}, **options)
    if settings.search == "nsga2":
        return optuna.samplers.NSGAIISampler(**options)
    return optuna.samplers.TPESampler(**options)
