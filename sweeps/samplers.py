"""The Optuna sampler a sweep searches with (``--search``): its options, and an NSGA-II sampler
that pickles.

Ray Tune pickles the searcher, and the sampler in it, when it builds the Tuner and whenever it
checkpoints the sweep for ``--resume``. Optuna 5.1's genetic samplers hold a ``threading.Lock``,
which does not pickle, so ``PicklableNSGAIISampler`` leaves its locks out of its state and makes
new ones when it is restored. The class lives at module level: pickle finds a class by its
module and name.
"""

from __future__ import annotations

import threading
from typing import Any

import optuna

from sweeps import spaces
from sweeps.settings import SweepSettings

_LOCK, _RLOCK = type(threading.Lock()), type(threading.RLock())


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler, unchanged, except that it pickles with its locks left out."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Any lock, not only the one Optuna 5.1 added: {attribute: whether it was reentrant}.
        locks = {name: isinstance(value, _RLOCK) for name, value in state.items() if isinstance(value, (_LOCK, _RLOCK))}
        for name in locks:
            del state[name]
        return {"state": state, "locks": locks}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__dict__.update(saved["state"])
        for name, reentrant in saved["locks"].items():
            setattr(self, name, threading.RLock() if reentrant else threading.Lock())


# Optuna's genetic samplers key their study attributes by class name (``<class>:generation``),
# set for every subclass: keep NSGA-II's own keys, so that the study reads as one a plain
# NSGAIISampler wrote (optuna.load_study with NSGAIISampler carries on with its generations).
# Older Optuna releases have no such keys.
for _key in ("_GENERATION_KEY", "_PARENT_CACHE_KEY_PREFIX"):
    if hasattr(optuna.samplers.NSGAIISampler, _key):
        setattr(PicklableNSGAIISampler, _key, getattr(optuna.samplers.NSGAIISampler, _key))


def startup_trials(num_samples: int) -> int:
    """TPE's random start-up trials: a third of the sweep, between 3 and Optuna's default 10."""
    return min(10, max(3, num_samples // 3))


def sampler_options(settings: SweepSettings) -> dict[str, Any]:
    """The options of the sweep's sampler (seeded; TPE multivariate with a short start-up)."""
    if settings.search == "tpe":
        # Multivariate TPE models the lambdas and learning rates jointly (they interact). Its
        # random start-up phase (Optuna's default: 10 trials) is shortened for small sweeps, or the
        # 6-trial CPU default would be random search throughout (3 random, then 3 TPE-guided here).
        return {"seed": settings.seed, "multivariate": True, "n_startup_trials": startup_trials(settings.num_samples)}
    return {"seed": settings.seed}


def make_sampler(settings: SweepSettings, space: spaces.SearchSpace | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``--search`` names, with ``sampler_options``.

    Args:
        settings: the sweep's settings (``search``, ``seed``, ``num_samples``).
        space: the search space; a grid sampler spans its choices.

    Returns:
        A seeded sampler that pickles (Tune checkpoints it inside the searcher).
    """
    options = sampler_options(settings)
    if settings.search == "random":
        return optuna.samplers.RandomSampler(**options)
    if settings.search == "grid":
        if space is None:
            raise ValueError("a grid sampler needs the search space")
        return optuna.samplers.GridSampler({k: list(p.choices or ()) for k, p in space.params.items()}, **options)
    if settings.search == "nsga2":
        return PicklableNSGAIISampler(**options)
    return optuna.samplers.TPESampler(**options)
