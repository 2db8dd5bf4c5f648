"""How sure a number over a few seeds or trials is: pure statistical functions with known answers.

Owns the intervals and tests the sweep's answer and the analysis report are stated with:

- ``t_interval``: a mean over seeds with its Student-t interval. At the 3-5 seeds a confirmation
  trains, a bootstrap percentile interval cannot reach beyond the observed seeds and covers the
  true mean far less often than it claims (``bootstrap_coverage`` measures it: about 0.75 for a
  nominal 0.95 at 3 normal seeds), while t's interval widens with the few degrees of freedom and
  holds its level for seed noise that is roughly normal.
- ``many_to_one``: each config against one control (the recipe) with Dunnett's simultaneous
  intervals (scipy.stats.dunnett: seed variance pooled over the groups, the family of
  comparisons held at the stated level together).
- ``seeds_needed``: how many seeds per config a two-sample comparison needs to tell a difference
  from zero at a given spread (power of the noncentral t).
- ``spearman_interval``: a rank correlation with its Fisher-z interval (Bonett and Wright's
  standard error for Spearman's rho), and ``MIN_TRIALS``: below how many trials an analysis is
  not shown at all.

numpy and scipy only; no pandas, Ray, Optuna or MLflow.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # every interval a user reads, unless a caller says otherwise
POWER = 0.8  # the power seeds_needed plans for
DUNNETT_SEED = 0  # scipy's Dunnett integrates a multivariate t by quasi-Monte Carlo: seeded, so reruns agree

# Below these counts an analysis is not shown as a number (the report and the sweep say why instead):
MIN_TRIALS = {
    # Spearman's rho over fewer than 10 trials: only |rho| > 0.65 is told from no correlation at
    # all, and its 95% interval spans most of [-1, 1].
    "spearman": 10,
    # fANOVA fits a random forest to the trials; with fewer than 20 it splits noise (Hutter et al.
    # measured importances over hundreds of configurations).
    "importance": 20,
    # A knob's per-level table: at least two levels holding this many trials each.
    "trials_per_level": 3,
    # A mean with an interval: at least two seeds (one seed has no spread to speak of).
    "seeds": 2,
}


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its interval (NaN bounds when ``n`` < 2)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def defined(self) -> bool:
        return self.n >= MIN_TRIALS["seeds"] and math.isfinite(self.low) and math.isfinite(self.high)


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The mean of ``values`` with its two-sided Student-t interval.

    Args:
        values: one number per seed (non-finite ones are left out).
        level: the interval's confidence level.
    Returns:
        The ``Interval``; its bounds are NaN for fewer than two values, equal to the mean when the
        values do not vary.
    """
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def bootstrap_coverage(n: int, level: float = LEVEL, trials: int = 2000, resamples: int = 1000,
                       seed: int = 0) -> float:
    """How often a bootstrap percentile interval of the mean of ``n`` standard-normal values
    covers the true mean 0 (the claim it makes is ``level``): why ``t_interval`` is used.

    Returns:
        The measured coverage over ``trials`` simulated samples.
    """
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal((trials, n))
    picks = rng.integers(0, n, size=(trials, resamples, n))
    means = np.take_along_axis(samples[:, None, :], picks, axis=2).mean(axis=2)  # (trials, resamples)
    low = np.quantile(means, 0.5 - level / 2, axis=1)
    high = np.quantile(means, 0.5 + level / 2, axis=1)
    return float(((low <= 0) & (high >= 0)).mean())


@dataclass(frozen=True)
class Comparison:
    """One group's mean minus the control's, with its simultaneous interval."""

    group: str
    difference: float
    low: float
    high: float
    n: int
    n_control: int

    @property
    def separable(self) -> bool:
        """The interval excludes zero (the difference is told apart from seed noise)."""
        return math.isfinite(self.low) and math.isfinite(self.high) and (self.low > 0 or self.high < 0)


def many_to_one(groups: Mapping[str, Sequence[float]], control: str, level: float = LEVEL) -> list[Comparison]:
    """Every group against ``control`` with Dunnett's simultaneous intervals.

    The intervals hold together at ``level``: when no group truly differs from the control, all
    of them contain zero with that probability. Seed variance is pooled over every group given,
    which is what gives 3-seed groups usable degrees of freedom: group i's interval is its
    difference +- ``dunnett_critical`` x the pooled sd x sqrt(1/n_i + 1/n_control).

    Args:
        groups: group name -> one value per seed; ``control`` among them. Groups with fewer than
            two finite values are left out (and so is everything when the control has fewer).
        control: the name of the control group.
        level: the family's confidence level.
    Returns:
        One ``Comparison`` per compared group, in ``groups``' order.
    """
    samples = {name: _finite(values) for name, values in groups.items()}
    ctrl = samples.get(control)
    treated = {name: x for name, x in samples.items() if name != control and len(x) >= MIN_TRIALS["seeds"]}
    if ctrl is None or len(ctrl) < MIN_TRIALS["seeds"] or not treated:
        return []
    sd, _ = pooled_sd([ctrl, *treated.values()])
    crit = dunnett_critical(tuple(len(x) for x in treated.values()), len(ctrl), level)
    out = []
    for name, x in treated.items():
        diff = float(x.mean() - ctrl.mean())
        half = crit * sd * math.sqrt(1 / len(x) + 1 / len(ctrl))
        out.append(Comparison(name, diff, diff - half, diff + half, len(x), len(ctrl)))
    return out


@functools.lru_cache(maxsize=512)
def dunnett_critical(sizes: tuple[int, ...], n_control: int, level: float = LEVEL) -> float:
    """Dunnett's two-sided critical value: the allowance of a many-to-one comparison in standard
    errors, for treated groups of ``sizes`` seeds against a control of ``n_control``.

    It depends on the design alone, so it is read once per design from scipy.stats.dunnett's
    interval on a stand-in sample of that design (scipy integrates a multivariate t by seeded
    quasi-Monte Carlo; each call costs tens of milliseconds, and a cached value also makes every
    answer of one design use exactly the same allowance).
    """
    rng = np.random.default_rng(DUNNETT_SEED)
    ctrl = rng.standard_normal(n_control)
    treated = [rng.standard_normal(n) for n in sizes]
    res = stats.dunnett(*treated, control=ctrl, rng=np.random.default_rng(DUNNETT_SEED))
    with warnings.catch_warnings():
        # scipy finds the allowance by a root search on a quasi-Monte Carlo integral and warns when
        # the integral's noise stops the search short: the allowance is then within about 2% of the
        # exact one (checked against other integration seeds), not worth a user's warning.
        warnings.filterwarnings("ignore", message="Computation of the confidence interval did not converge")
        ci = res.confidence_interval(confidence_level=level)
    sd, _ = pooled_sd([ctrl, *treated])
    return float((ci.high[0] - ci.low[0]) / 2 / (sd * math.sqrt(1 / sizes[0] + 1 / n_control)))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The seed standard deviation pooled over groups (each around its own mean) and its degrees
    of freedom; (NaN, 0) when no group has two values."""
    arrays = [_finite(g) for g in groups]
    arrays = [a for a in arrays if len(a) >= 2]
    df = sum(len(a) - 1 for a in arrays)
    if df == 0:
        return math.nan, 0
    ss = sum(float(((a - a.mean()) ** 2).sum()) for a in arrays)
    return math.sqrt(ss / df), df


def power(difference: float, sd: float, n: int, alpha: float, groups: int = 2) -> float:
    """The chance that a two-sided two-sample t test at ``alpha`` (seed variance pooled over
    ``groups`` groups of ``n`` seeds) tells ``difference`` from zero at seed spread ``sd``."""
    if n < 2 or sd <= 0 or not math.isfinite(sd):
        return math.nan
    df = groups * (n - 1)
    ncp = abs(difference) / (sd * math.sqrt(2.0 / n))
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    value = float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    if not math.isfinite(value):  # scipy's noncentral t gives NaN far in its tail: the normal limit there
        value = float(stats.norm.sf(crit - ncp) + stats.norm.cdf(-crit - ncp))
    return value


def seeds_needed(difference: float, sd: float, alpha: float, groups: int = 2, target: float = POWER,
                 max_seeds: int = 1000) -> int | None:
    """The fewest seeds per config at which ``power`` reaches ``target``.

    Args:
        difference: the difference to tell from zero (e.g. the one measured).
        sd: the seed spread (e.g. ``pooled_sd``).
        alpha: the per-comparison level (a family's level divided by its number of comparisons
            is Bonferroni's, a little stricter than Dunnett's: the count errs on the safe side).
        groups: how many groups the seed variance is pooled over.
        target: the power wanted.
        max_seeds: the search's end.
    Returns:
        The seed count, or None when no count up to ``max_seeds`` reaches it (a difference of
        zero never does).
    """
    if not (math.isfinite(difference) and math.isfinite(sd)) or difference == 0 or sd <= 0:
        return None
    if power(difference, sd, max_seeds, alpha, groups) < target:
        return None
    low, high = 2, max_seeds  # power grows with n: bisect for the first n that reaches the target
    while low < high:
        mid = (low + high) // 2
        if power(difference, sd, mid, alpha, groups) >= target:
            high = mid
        else:
            low = mid + 1
    return low


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho over ``n`` pairs with its interval (NaN where undefined)."""

    rho: float
    low: float
    high: float
    n: int


def spearman_interval(x: Sequence[float], y: Sequence[float], level: float = LEVEL) -> RankCorrelation:
    """Spearman's rank correlation of paired values with a Fisher-z interval.

    The standard error of atanh(rho) is Bonett and Wright's (2000) sqrt((1 + rho^2 / 2) / (n - 3)),
    which holds Spearman's rho to its level where Pearson's 1 / sqrt(n - 3) is too narrow.

    Args:
        x, y: paired values (pairs with a non-finite member are left out).
        level: the interval's confidence level.
    Returns:
        The correlation; its bounds are NaN below four pairs, and rho itself is NaN below three
        pairs or when either side does not vary.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return RankCorrelation(math.nan, math.nan, math.nan, n)
    rho = float(stats.spearmanr(a, b).statistic)
    if n < 4:
        return RankCorrelation(rho, math.nan, math.nan, n)
    z = math.atanh(min(max(rho, -0.999999), 0.999999))
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt((1 + rho ** 2 / 2) / (n - 3))
    return RankCorrelation(rho, math.tanh(z - half), math.tanh(z + half), n)
