"""Known answers of the statistics the sweep's answer and the report are stated with."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sweeps import uncertainty as U


def test_t_interval_of_three_values_is_the_textbook_one() -> None:
    iv = U.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3)
    assert (iv.mean, iv.sd, iv.n) == (2.0, 1.0, 3)
    assert iv.low == pytest.approx(2 - half, rel=1e-9) and iv.high == pytest.approx(2 + half, rel=1e-9)
    assert iv.defined


def test_t_interval_without_spread_or_seeds() -> None:
    one = U.t_interval([0.3, float("nan")])
    assert one.mean == 0.3 and one.n == 1 and math.isnan(one.low) and not one.defined
    flat = U.t_interval([0.2, 0.2, 0.2])
    assert flat.low == pytest.approx(0.2) and flat.high == pytest.approx(0.2)
    assert U.t_interval([]).n == 0


def test_t_interval_holds_its_level_at_three_seeds_where_the_bootstrap_does_not() -> None:
    rng = np.random.default_rng(1)
    samples = rng.standard_normal((4000, 3))
    covered = np.mean([U.t_interval(s).low <= 0 <= U.t_interval(s).high for s in samples])
    # 4,000 draws: the binomial sd of a 0.95 coverage is 0.0035; +-0.015 is more than 4 of them.
    assert covered == pytest.approx(0.95, abs=0.015)
    assert U.bootstrap_coverage(3, trials=1000, resamples=500) < 0.85  # measured about 0.75


def test_dunnett_critical_value_matches_dunnetts_table_and_the_t_for_one_group() -> None:
    # Dunnett (1955), two-sided 0.05, two treatments against a control, 6 degrees of freedom: 2.86.
    assert U.dunnett_critical((3, 3), 3, 0.95) == pytest.approx(2.86, abs=0.02)
    # One comparison is the two-sample t: t(0.975, 4) = 2.776 (scipy integrates by quasi-Monte Carlo).
    assert U.dunnett_critical((3,), 3, 0.95) == pytest.approx(stats.t.ppf(0.975, 4), rel=0.01)


def test_many_to_one_agrees_with_scipys_dunnett() -> None:
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(0, 1, 3), rng.normal(1, 1, 4), rng.normal(0, 1, 3)
    ci = stats.dunnett(a, b, control=c, rng=np.random.default_rng(3)).confidence_interval(0.95)
    got = U.many_to_one({"c": c, "a": a, "b": b}, "c")
    assert [g.group for g in got] == ["a", "b"]
    assert got[0].difference == pytest.approx(a.mean() - c.mean())
    for i, g in enumerate(got):  # quasi-Monte Carlo integrals with different seeds: within 1% of the width
        width = ci.high[i] - ci.low[i]
        assert g.low == pytest.approx(ci.low[i], abs=0.01 * width) and g.high == pytest.approx(ci.high[i], abs=0.01 * width)


def test_many_to_one_holds_the_family_level_when_nothing_differs() -> None:
    rng = np.random.default_rng(2)
    wrong = 0
    for _ in range(400):
        groups = {name: rng.standard_normal(3) for name in ("recipe", "top1", "top2")}
        wrong += any(c.separable for c in U.many_to_one(groups, "recipe"))
    # The family errs 5% of the time; 400 families: binomial sd 0.011.
    assert wrong / 400 == pytest.approx(0.05, abs=0.035)


def test_many_to_one_leaves_out_groups_without_two_seeds() -> None:
    got = U.many_to_one({"r": [1, 2, 3], "a": [4.0], "b": [1, 2, 2.5]}, "r")
    assert [g.group for g in got] == ["b"]
    assert U.many_to_one({"r": [1.0], "a": [1, 2, 3]}, "r") == []
    same = U.many_to_one({"r": [1, 1], "a": [1, 1]}, "r")
    assert same[0].difference == 0 and not same[0].separable


def test_seeds_needed_is_the_textbook_sample_size() -> None:
    # A two-sample t test at 0.05 with 80% power for a difference of one sd needs 17 per group.
    assert U.seeds_needed(1.0, 1.0, 0.05) == 17
    assert U.seeds_needed(0.5, 1.0, 0.05) == 64
    assert U.power(1.0, 1.0, 17, 0.05) >= 0.8 > U.power(1.0, 1.0, 16, 0.05)
    assert U.seeds_needed(0.0, 1.0, 0.05) is None and U.seeds_needed(1e-6, 1.0, 0.05, max_seeds=1000) is None
    assert U.power(30.0, 1.0, 900, 0.01) == pytest.approx(1.0)  # scipy's noncentral t is NaN that far out


def test_pooled_sd() -> None:
    sd, df = U.pooled_sd([[1, 2, 3], [10, 12, 14], [5.0]])
    assert df == 4 and sd == pytest.approx(math.sqrt((2 + 8) / 4))
    assert U.pooled_sd([[1.0]]) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_spearman_interval() -> None:
    x = np.arange(10.0)
    perfect = U.spearman_interval(x, 2 * x + 1)
    assert perfect.rho == pytest.approx(1.0) and perfect.n == 10
    rc = U.spearman_interval(x, [2, 1, 4, 3, 6, 5, 8, 7, 10, 9])
    z, se = math.atanh(rc.rho), math.sqrt((1 + rc.rho ** 2 / 2) / 7)  # Bonett and Wright's standard error
    assert rc.low == pytest.approx(math.tanh(z - 1.959964 * se), rel=1e-5)
    assert rc.high == pytest.approx(math.tanh(z + 1.959964 * se), rel=1e-5)
    assert math.isnan(U.spearman_interval([1, 2], [1, 2]).rho)
    three = U.spearman_interval([1, 2, 3], [1, 3, 2])
    assert three.rho == pytest.approx(0.5) and math.isnan(three.low)
    assert math.isnan(U.spearman_interval([1, 1, 1, 1], [1, 2, 3, 4]).rho)
