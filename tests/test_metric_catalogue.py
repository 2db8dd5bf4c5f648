"""The metric catalogue is the one place a metric's name, family, direction and the headline
sets are written: the suite, the config and every reader take them from it."""

from __future__ import annotations

import ast
from pathlib import Path

from infogan import metric_catalogue as catalogue
from infogan.config import GROUND_TRUTH_FAMILIES, METRIC_FAMILIES
from infogan.metrics.suite import FAMILY_METRICS

REPO = Path(__file__).resolve().parents[1]


def test_families_and_metrics_come_from_the_catalogue() -> None:
    assert METRIC_FAMILIES == catalogue.FAMILIES == ("categorical", "mig", "dci", "sap", "modularity", "factor_vae",
                                                     "beta_vae", "fid")
    assert frozenset(METRIC_FAMILIES) - {"categorical", "fid"} == GROUND_TRUTH_FAMILIES
    reported = {f"eval/{name}" for names in FAMILY_METRICS.values() for name in names} | {"eval/seconds"}
    assert reported == set(catalogue.BY_NAME)


def test_directions_quality_and_sets() -> None:
    assert catalogue.direction("eval/fid") == "min" and catalogue.direction("eval/mig") == "max"
    assert catalogue.direction("train/loss_d") == "min" and catalogue.direction("train/diverged_step") == "min"
    assert catalogue.direction("eval/fid_inception") == "min" and catalogue.direction("eval/new_score") == "max"
    assert not catalogue.is_quality("eval/seconds") and not catalogue.is_quality("eval/factor_vae_num_active")
    assert not catalogue.is_quality("eval/beta_vae_train") and catalogue.is_quality("eval/new_score")
    assert not catalogue.is_quality("train/loss_d")
    assert set(catalogue.ANSWER) <= set(catalogue.HEADLINE) <= set(catalogue.BY_NAME)
    assert "eval/fid" not in catalogue.SUPERVISED and "eval/cat_accuracy" in catalogue.SUPERVISED
    assert catalogue.default_metric("digits") == "eval/cat_accuracy" and catalogue.DEFAULT_METRIC == "eval/mig"
    assert catalogue.label("eval/factor_vae") == "FactorVAE" and catalogue.label("eval/other") == "other"


def _metric_literals(path: Path) -> list[tuple[int, str]]:
    """Catalogued metric names written as string constants in default arguments and in module-level
    names bound to a string, tuple, list or set (where a default or a list of metrics would hide;
    a table of measurements keyed by metric, a dict, is data)."""
    tree = ast.parse(path.read_text())
    found = []
    nodes = [d for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for d in [*f.args.defaults, *f.args.kw_defaults] if d is not None]
    nodes += [s.value for s in tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))
              and isinstance(s.value, (ast.Constant, ast.Tuple, ast.List, ast.Set))]
    for node in nodes:
        for const in ast.walk(node):
            if isinstance(const, ast.Constant) and const.value in catalogue.BY_NAME:
                found.append((const.lineno, const.value))
    return found


def test_no_module_writes_a_default_metric_or_a_metric_list_of_its_own() -> None:
    offenders = {}
    for package in ("infogan", "sweeps", "analysis"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name == "metric_catalogue.py":
                continue
            hits = _metric_literals(path)
            if hits:
                offenders[str(path.relative_to(REPO))] = hits
    assert offenders == {}
