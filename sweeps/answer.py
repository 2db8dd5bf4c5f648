"""A sweep's answer, from its confirmation: each confirmed config's metrics over fresh seeds with
their intervals, its difference from the recipe, and the verdict in words.

Owns ``compute_answer`` (rows of confirmation trials -> ``Answer``) and the answer's three forms:
the text the sweep's closing output leads with, the Markdown of the parent run's description and
of the report's first section, and the metrics logged on the parent run. The sweep (from Tune's
trials) and the analysis (from the trials table) both build rows of one trial each and call it,
so the two say the same thing. The statistics are ``sweeps.uncertainty``'s; the metrics the
answer is stated in, their labels and directions are ``infogan.metric_catalogue``'s.

The method, as the answer itself says it: a mean over seeds with a Student-t 95% interval (few
seeds: see ``sweeps.uncertainty``); each confirmed config against the recipe with Dunnett's
simultaneous intervals (seed variance pooled over the confirmed configs), each metric's family at
1 - 0.05 / M so that the M metrics' families hold 95% together (Bonferroni). A config is
"separable" from the recipe on a metric when that interval excludes zero.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from infogan import metric_catalogue as catalogue
from sweeps import record
from sweeps.uncertainty import (
    LEVEL,
    MIN_TRIALS,
    POWER,
    Comparison,
    Interval,
    many_to_one,
    pooled_sd,
    seeds_needed,
    t_interval,
)

TOO_MANY_SEEDS = 1000  # seeds_needed's search end: "more than this" reads as "not in practice"


@dataclass(frozen=True)
class Candidate:
    """One confirmed config: its label (``recipe``, ``top1``, ...), what it is, its seeds' statuses
    and each answer metric's interval over its finished seeds."""

    name: str
    description: str
    planned: int
    statuses: Mapping[str, int]
    intervals: Mapping[str, Interval]

    @property
    def finished(self) -> int:
        return int(self.statuses.get(record.STATUS_FINISHED, 0))


@dataclass(frozen=True)
class Answer:
    """The confirmation's answer (``compute_answer``)."""

    metrics: tuple[str, ...]  # the answer's metrics the trials reported, the objective first
    candidates: tuple[Candidate, ...]  # the recipe first
    comparisons: Mapping[str, tuple[Comparison, ...]]  # metric -> each candidate minus the recipe
    spread: Mapping[str, tuple[float, int]]  # metric -> pooled seed sd and its degrees of freedom
    level: float = LEVEL
    steps: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def metric_level(self) -> float:
        """Each metric's family level, so that the metrics' families hold ``level`` together."""
        return 1 - (1 - self.level) / max(1, len(self.metrics))

    def places(self, metric: str) -> int:
        """The decimals every number of ``metric`` is printed with (from the configs' means)."""
        return decimals([c.intervals[metric].mean for c in self.candidates if metric in c.intervals])

    @property
    def recipe(self) -> Candidate | None:
        return next((c for c in self.candidates if c.name == record.CANDIDATE_RECIPE), None)

    def separable(self) -> list[tuple[Comparison, str, bool]]:
        """(comparison, metric, better) for every difference told apart from seed noise."""
        return [(c, metric, better(metric, c.difference))
                for metric in self.metrics for c in self.comparisons.get(metric, ()) if c.separable]

    # ------------------------------------------------------------------------------------------
    # Words

    def verdict(self) -> list[str]:
        """The answer in sentences: which config is better or worse than the recipe on which
        metric and by how much, or that none is separable and how many seeds it would take."""
        recipe = self.recipe
        seeds = _seed_counts(self.candidates)
        if not self.metrics:
            return ["No answer metric was reported by the confirmation's finished trials.", *self.notes]
        if recipe is None or recipe.finished < MIN_TRIALS["seeds"]:
            have = 0 if recipe is None else recipe.finished
            return [f"The recipe has {have} finished seed{'s' * (have != 1)}: nothing to compare with "
                    f"(at least {MIN_TRIALS['seeds']} are needed).", *self.notes]
        lines = [f"{c.name}: {c.finished} of {c.planned} seeds finished ({_statuses(c)}): too few to compare."
                 for c in self.candidates if c is not recipe and c.finished < MIN_TRIALS["seeds"]]
        found = self.separable()
        for comp, metric, is_better in found:
            lines.append(f"{comp.group} is {'better' if is_better else 'worse'} than the recipe on "
                         f"{catalogue.label(metric)}: {self.difference_text(metric, comp)} "
                         f"({comp.n} vs {comp.n_control} seeds).")
        compared = [c for c in self.candidates if c is not recipe and c.finished >= MIN_TRIALS["seeds"]]
        labels = _join([catalogue.label(m) for m in self.metrics])
        if compared and not found:
            lines.append(f"No confirmed config is separable from the recipe on {labels} at {seeds} per config.")
        elif compared:
            for cand in compared:
                alike = [catalogue.label(m) for m in self.metrics
                         if any(c.group == cand.name and not c.separable for c in self.comparisons.get(m, ()))]
                if alike:
                    lines.append(f"{cand.name} is not separable from the recipe on {_join(alike)}.")
        lines += self._seeds_lines()
        return lines + list(self.notes)

    def _seeds_lines(self) -> list[str]:
        """For the first metric (the objective), how many seeds would tell each non-separable
        measured difference from zero at the measured spread."""
        metric = self.metrics[0]
        sd, df = self.spread.get(metric, (math.nan, 0))
        alpha = (1 - self.metric_level) / max(1, len(self.comparisons.get(metric, ())))
        groups = 1 + len(self.comparisons.get(metric, ()))
        out = []
        for comp in self.comparisons.get(metric, ()):
            if comp.separable or not math.isfinite(sd):
                continue
            n = seeds_needed(comp.difference, sd, alpha, groups=groups, max_seeds=TOO_MANY_SEEDS)
            places = self.places(metric)
            head = (f"At the measured seed spread ({catalogue.label(metric)} sd {fmt(sd, places)}, pooled over "
                    f"{groups} configs), telling {comp.group}'s {fmt(comp.difference, places, sign=True)} from zero")
            if n is None:
                out.append(f"{head} would take more than {TOO_MANY_SEEDS:,} seeds per config: "
                           "no practical confirmation separates it.")
            else:
                out.append(f"{head} would take about {n} seeds per config ({POWER:.0%} power).")
        return out

    def method(self) -> str:
        """How the numbers were computed, in one paragraph."""
        m = len(self.metrics)
        return (f"Mean [{self.level:.0%} interval] over each config's finished seeds: Student t with n - 1 degrees of "
                f"freedom (at a few seeds a bootstrap interval is too narrow). Differences from the recipe: Dunnett's "
                f"simultaneous intervals (seed variance pooled over the confirmed configs)"
                + (f", each metric at {self.metric_level:.2%} so that the {m} metrics hold {self.level:.0%} together "
                   "(Bonferroni)" if m > 1 else "")
                + "; separable = the interval excludes zero. The confirmation's seeds are fresh: none is a seed the "
                  "search ranked its trials on.")

    def headline(self) -> str:
        """The verdict's first sentence (the parent run's ``infogan.answer`` tag)."""
        lines = self.verdict()
        return lines[0] if lines else ""

    # ------------------------------------------------------------------------------------------
    # Tables

    def difference_text(self, metric: str, comp: Comparison) -> str:
        """``+d [low, high]`` in the metric's decimals."""
        p = self.places(metric)
        return f"{fmt(comp.difference, p, sign=True)} [{fmt(comp.low, p, sign=True)}, {fmt(comp.high, p, sign=True)}]"

    def table(self) -> pd.DataFrame:
        """One row per confirmed config: config, seeds, each metric as ``mean [low, high]``."""
        rows = []
        for c in self.candidates:
            row: dict[str, Any] = {"config": c.name, "what": c.description, "seeds": f"{c.finished}/{c.planned}"}
            for m in self.metrics:
                row[catalogue.label(m)] = interval_text(c.intervals.get(m), self.places(m))
            rows.append(row)
        return pd.DataFrame(rows)

    def difference_table(self) -> pd.DataFrame:
        """One row per config compared with the recipe: each metric's difference ``d [low, high]``."""
        names = [c.name for c in self.candidates if c.name != record.CANDIDATE_RECIPE]
        rows = []
        for name in names:
            row: dict[str, Any] = {"config": f"{name} - recipe"}
            for m in self.metrics:
                comp = next((c for c in self.comparisons.get(m, ()) if c.group == name), None)
                row[catalogue.label(m)] = "" if comp is None else (
                    self.difference_text(m, comp) + (" *" if comp.separable else ""))
            rows.append(row)
        return pd.DataFrame(rows)

    def text(self) -> str:
        """The answer as the sweep's closing output leads with it."""
        if not self.candidates:
            return "No confirmation was run: the search's best trial is one seed's score (see below)."
        budget = f", {self.steps:,} steps each" if self.steps else ""
        seeds = max(c.planned for c in self.candidates)
        head = (f"The answer: {len(self.candidates)} configs x {seeds} fresh seeds{budget}; "
                f"mean [{self.level:.0%} interval] over seeds:")
        lines = [head, self.table().to_string(index=False)]
        diffs = self.difference_table()
        if not diffs.empty and self.comparisons:
            lines += ["", f"Difference from the recipe (simultaneous {self.level:.0%} intervals; * = separable):",
                      diffs.to_string(index=False)]
        lines += ["", *(f"  {line}" for line in self.verdict()), "", _wrap(self.method())]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The answer in Markdown: the verdict first, then the tables and the method."""
        from sweeps.ranking import markdown_table

        if not self.candidates:
            return "_No confirmation was run: the search's best trial is one seed's score._"
        lines = [*(f"- {line}" for line in self.verdict()), "",
                 f"Mean [{self.level:.0%} interval] over fresh seeds"
                 + (f" ({self.steps:,} steps each)" if self.steps else "") + ":", "", markdown_table(self.table())]
        diffs = self.difference_table()
        if not diffs.empty and self.comparisons:
            lines += ["", f"Difference from the recipe (simultaneous {self.level:.0%} intervals; * = separable):", "",
                      markdown_table(diffs)]
        lines += ["", f"_{self.method()}_"]
        return "\n".join(lines)

    def mlflow_metrics(self) -> dict[str, float]:
        """The answer as parent-run metrics: ``answer/<config>/<metric>_{mean,low,high}``,
        ``answer/<config>-recipe/<metric>_{diff,low,high}`` and ``answer/separable``."""
        out: dict[str, float] = {"answer/separable": float(len(self.separable()))}
        for c in self.candidates:
            for m, iv in c.intervals.items():
                leaf = m.rsplit("/", 1)[-1]
                for name, value in (("mean", iv.mean), ("low", iv.low), ("high", iv.high)):
                    if math.isfinite(value):
                        out[f"answer/{c.name}/{leaf}_{name}"] = value
                out[f"answer/{c.name}/{leaf}_seeds"] = float(iv.n)
        for m, comps in self.comparisons.items():
            leaf = m.rsplit("/", 1)[-1]
            for comp in comps:
                for name, value in (("diff", comp.difference), ("low", comp.low), ("high", comp.high)):
                    if math.isfinite(value):
                        out[f"answer/{comp.group}-recipe/{leaf}_{name}"] = value
        return out


def describe_config(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``lambda_cont=0.05, lr_d=0.002``: a config's values of the given keys, by their last name
    (how the answer says what each confirmed config is)."""
    def text(v: Any) -> str:
        return format(v, ".3g") if isinstance(v, float) else str(v)

    return ", ".join(f"{k.rsplit('.', 1)[-1]}={text(config.get(k))}" for k in keys) or "the sweep's fixed config"


def better(metric: str, difference: float) -> bool:
    """Whether a positive-or-negative difference is an improvement on ``metric`` (its direction)."""
    return difference > 0 if catalogue.direction(metric) == catalogue.MAX else difference < 0


def compute_answer(rows: pd.DataFrame, metrics: Sequence[str], descriptions: Mapping[str, str],
                   planned: Mapping[str, int] | None = None, steps: int | None = None, level: float = LEVEL,
                   notes: Sequence[str] = ()) -> Answer:
    """The answer from the confirmation's trials.

    Args:
        rows: one row per confirmation trial: ``candidate``, ``status`` and the metrics' final
            values in columns named by the metric (``eval/mig``); only finished trials count.
        metrics: the metrics to state it in (the objective first); those no finished trial
            reported are left out.
        descriptions: candidate -> what its config is; their order is the table's (the recipe
            is put first).
        planned: candidate -> the seeds planned (default: its rows).
        steps: the confirmation's training budget, for the text.
        level: the family level of the intervals.
        notes: sentences appended to the verdict.
    Returns:
        The ``Answer``.
    """
    names = sorted(descriptions, key=lambda n: n != record.CANDIDATE_RECIPE)  # stable: the recipe first
    done = rows[rows["status"] == record.STATUS_FINISHED] if not rows.empty else rows
    present = [m for m in metrics if m in done.columns and pd.to_numeric(done[m], errors="coerce").notna().any()]
    per_metric_level = 1 - (1 - level) / max(1, len(present))
    candidates = []
    for name in names:
        mine = rows[rows["candidate"] == name] if not rows.empty else rows
        finished = done[done["candidate"] == name] if not done.empty else done
        intervals = {m: t_interval(pd.to_numeric(finished[m], errors="coerce").to_numpy()) for m in present}
        statuses = Counter(str(s) for s in mine["status"]) if not mine.empty else Counter()
        candidates.append(Candidate(name, descriptions[name], int((planned or {}).get(name, len(mine))),
                                    dict(statuses), intervals))
    comparisons: dict[str, tuple[Comparison, ...]] = {}
    spread: dict[str, tuple[float, int]] = {}
    for m in present:
        groups = {name: pd.to_numeric(done[done["candidate"] == name][m], errors="coerce").to_numpy()
                  for name in names} if not done.empty else {}
        comparisons[m] = tuple(many_to_one(groups, record.CANDIDATE_RECIPE, per_metric_level))
        spread[m] = pooled_sd(list(groups.values()))
    return Answer(tuple(present), tuple(candidates), comparisons, spread, level, steps, tuple(notes))


# --------------------------------------------------------------------------------------------
# Formatting


def decimals(values: Sequence[float]) -> int:
    """The decimals that give the largest of ``values`` three significant digits (whole numbers
    from 100 on): one metric's numbers are printed alike, so a mean and its bounds line up."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 3
    return max(0, 2 - math.floor(math.log10(max(finite))))


def fmt(value: float, places: int | None = None, sign: bool = False) -> str:
    """A number as the answer prints it: ``places`` decimals (default: ``decimals([value])``)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    places = decimals([value]) if places is None else places
    return format(value, f"{'+' if sign else ''},.{places}f")


def interval_text(iv: Interval | None, places: int | None = None) -> str:
    """``mean [low, high]``, or the mean with why there is no interval."""
    if iv is None or iv.n == 0:
        return "n/a"
    if not iv.defined:
        return f"{fmt(iv.mean, places)} ({iv.n} seed{'s' * (iv.n != 1)}: no interval)"
    return f"{fmt(iv.mean, places)} [{fmt(iv.low, places)}, {fmt(iv.high, places)}]"


def _statuses(c: Candidate) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(c.statuses.items()))


def _seed_counts(candidates: Sequence[Candidate]) -> str:
    counts = sorted({c.finished for c in candidates})
    if len(counts) == 1:
        return f"{counts[0]} seeds"
    return f"{counts[0]}–{counts[-1]} seeds"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _wrap(text: str, width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
