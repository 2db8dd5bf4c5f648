"""Choosing one model among the seeds of a config by its categorical code, without labels.

Owns the label-free criteria for a categorical code and the judgement of a pick against labels,
kept apart so that a label can never reach the choice:

- ``agreement``: ModelCentrality (Lin et al., ICML 2020; ``analysis.selection.model_centrality``)
  over the categorical code, with the categorical accuracy itself as the supervised metric: each
  seed's clustering of the same real images is scored against every other seed's clustering as if
  that were the labels (Hungarian-matched agreement), and the seed that agrees most with the
  others is picked. Seeds that found the digits agree with each other; seeds that merged or split
  classes each do so in their own way, so they agree less with everyone. This is the criterion.
- ``information``: Q's mutual information between a real image and its code,
  I(x; c) = H(E[p]) - E[H(p)] over Q's posteriors p (balanced and confident clusters), in nats.
- ``confidence``: Q's mean highest posterior on real images.

The last two read only one model each and are reported beside the criterion, not used to pick.
``judge`` then scores the pick with labels (Hungarian-matched accuracy,
``infogan.metrics.categorical``): each seed's accuracy, the pick's, the median's and the best's,
and each criterion's Spearman correlation with accuracy over the n seeds, with its interval.
``subset_picks`` repeats the pick on every subset of k seeds, so a claim about one draw of 8
seeds stands beside how often it holds over the draws the trained seeds allow.

``load_posteriors`` (torch, imported inside) applies each run directory's last checkpoint's Q to
the dataset's fixed evaluation images; ``python -m analysis select-categorical`` writes the table
and figure. Everything else here is numpy/pandas on arrays, and importing the module loads no torch.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.selection import model_centrality

CRITERIA = ("agreement", "information", "confidence")
CRITERION = "agreement"  # chosen before any seed's accuracy was seen; the others are reported only
ROW_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; this only catches logits passed by mistake


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of images two clusterings put together under the best one-to-one matching of
    their values: the categorical accuracy of ``a`` with ``b`` in place of the labels (symmetric).

    Args:
        a: (N,) int cluster of each image under one model.
        b: (N,) int cluster of the same images under another model.

    Returns:
        Agreement in (0, 1]; 1 when the two are the same partition up to renaming.
    """
    from infogan.metrics.categorical import categorical_scores  # the package imports torch: only when scoring

    return categorical_scores(np.asarray(a).ravel(), np.asarray(b).ravel())["cat_accuracy"]


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats along the last axis; 0 · log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis=-1)


def information(posteriors: np.ndarray) -> float:
    """Q's mutual information between image and code on real images: H(mean p) - mean H(p).

    Args:
        posteriors: (N, K) Q's posterior over the K values of the code for each real image.

    Returns:
        Nats in [0, ln K]: ln K when every image is assigned with certainty and the K values are
        used equally often; 0 when Q says the same thing for every image.
    """
    p = _check_posteriors(posteriors)
    return float(_entropy(p.mean(axis=0)) - _entropy(p).mean())


def confidence(posteriors: np.ndarray) -> float:
    """Q's mean highest posterior on real images.

    Args:
        posteriors: (N, K) Q's posteriors.

    Returns:
        A value in [1/K, 1].
    """
    return float(_check_posteriors(posteriors).max(axis=1).mean())


def _check_posteriors(posteriors: np.ndarray) -> np.ndarray:
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"posteriors must be (N, K) with N >= 1 and K >= 2, got shape {p.shape}")
    if (p < 0).any() or np.abs(p.sum(axis=1) - 1).max() > ROW_SUM_TOLERANCE:
        raise ValueError("posteriors must be probabilities (rows >= 0 summing to 1): pass softmax(logits), not logits")
    return p


@dataclass(frozen=True)
class CategoricalSelection:
    """Every criterion's score per model, the pairwise agreements and the model picked."""

    scores: pd.DataFrame  # model_id, agreement, information, confidence, rank (by the criterion); best first
    pairwise: pd.DataFrame  # [i, j] = agreement of i's clustering with j's; NaN diagonal
    selected: str
    criterion: str


def select_categorical(posteriors: Mapping[str, np.ndarray], criterion: str = CRITERION) -> CategoricalSelection:
    """Pick one model among several (seeds of one config) from Q's posteriors alone.

    Args:
        posteriors: model id → (N, K) Q posteriors on the same N real images in the same order.
        criterion: which score picks (one of ``CRITERIA``; default ``agreement``).

    Returns:
        ``CategoricalSelection``; ties are broken by model id so the pick is deterministic.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r}: choose one of {', '.join(CRITERIA)}")
    probs = {str(k): _check_posteriors(v) for k, v in posteriors.items()}
    shapes = {p.shape for p in probs.values()}
    if len(shapes) > 1:
        raise ValueError(f"posteriors of different shapes {sorted(shapes)}: every model must see the same images")
    centrality = model_centrality({k: p.argmax(axis=1) for k, p in probs.items()}, metric=agreement)
    scores = centrality.scores[["model_id", "centrality"]].rename(columns={"centrality": "agreement"})
    scores["information"] = [information(probs[m]) for m in scores["model_id"]]
    scores["confidence"] = [confidence(probs[m]) for m in scores["model_id"]]
    scores = scores.sort_values([criterion, "model_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    scores["rank"] = scores[criterion].rank(ascending=False, method="min").astype(int)
    return CategoricalSelection(scores, centrality.pairwise, str(scores["model_id"].iloc[0]), criterion)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's ρ of a criterion with accuracy over n models, its 95% interval and p-value."""

    criterion: str
    n: int
    rho: float
    low: float
    high: float
    p_value: float  # exact permutation test (two-sided) for n <= 9, else scipy's asymptotic one


def spearman(score: Sequence[float], accuracy: Sequence[float], criterion: str = "") -> RankCorrelation:
    """Spearman's ρ of a criterion's scores with accuracy, with a 95% interval.

    The interval is Fisher's z with Bonett & Wright's (2000) variance (1 + ρ²/2)/(n − 3) for
    Spearman's ρ; with n = 8 it is wide, and saying so is the point. The p-value is exact (all
    n! orderings) up to n = 9, where the normal approximation is poor.

    Args:
        score: the criterion's value per model.
        accuracy: the same models' accuracies.
        criterion: name kept with the result.

    Returns:
        ``RankCorrelation``; interval NaN when n ≤ 3, |ρ| = 1 or ρ is undefined (a constant column).
    """
    x, y = np.asarray(score, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError(f"need as many scores as accuracies, at least 2 (got {len(x)} and {len(y)})")
    rho = float(stats.spearmanr(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
    low = high = p_value = float("nan")
    if math.isfinite(rho):
        if n > 3 and abs(rho) < 1:  # |ρ| = 1 has no Fisher z: the interval stays NaN
            half = 1.959964 * math.sqrt((1 + rho * rho / 2) / (n - 3))
            low, high = math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)
        p_value = _exact_p(x, y, rho) if n <= 9 else float(stats.spearmanr(x, y).pvalue)
    return RankCorrelation(criterion, n, rho, low, high, p_value)


def _exact_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Two-sided permutation p-value of Spearman's ρ over all orderings of y (n ≤ 9: ≤ 362,880)."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    perms = np.array(list(itertools.permutations(range(len(ry)))))
    r = ry[perms]  # (n!, n)
    rxc, rc = rx - rx.mean(), r - r.mean(axis=1, keepdims=True)
    rhos = (rc @ rxc) / (np.sqrt((rc ** 2).sum(axis=1)) * np.sqrt((rxc ** 2).sum()))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


@dataclass(frozen=True)
class Judgement:
    """How the label-free pick fares on the labels."""

    table: pd.DataFrame  # model_id, accuracy, criteria scores, rank by accuracy, picked; best accuracy first
    selected: str
    selected_accuracy: float
    median_accuracy: float
    best_accuracy: float
    best_id: str
    selected_accuracy_rank: int  # 1 = best
    n: int
    correlations: tuple[RankCorrelation, ...]


def judge(selection: CategoricalSelection, accuracy: Mapping[str, float]) -> Judgement:
    """Score a label-free pick with labels: the pick's accuracy against the median and best seed's.

    Args:
        selection: what ``select_categorical`` returned (made without labels).
        accuracy: model id → Hungarian-matched categorical accuracy (``accuracies``).

    Returns:
        ``Judgement``; the median is the median over all n models (the mean of the two middle
        ones for even n).
    """
    missing = set(selection.scores["model_id"]) - set(accuracy)
    if missing:
        raise ValueError(f"no accuracy for model(s) {sorted(missing)}")
    table = selection.scores.drop(columns="rank").copy()
    table["accuracy"] = [float(accuracy[m]) for m in table["model_id"]]
    table["accuracy_rank"] = table["accuracy"].rank(ascending=False, method="min").astype(int)
    table["picked"] = table["model_id"] == selection.selected
    table = table.sort_values(["accuracy", "model_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    table = table[["model_id", "accuracy", "accuracy_rank", *CRITERIA, "picked"]]
    sel = table[table["picked"]].iloc[0]
    corr = tuple(spearman(table[c], table["accuracy"], c) for c in CRITERIA)
    return Judgement(table, selection.selected, float(sel["accuracy"]), float(table["accuracy"].median()),
                     float(table["accuracy"].iloc[0]), str(table["model_id"].iloc[0]), int(sel["accuracy_rank"]),
                     len(table), corr)


@dataclass(frozen=True)
class SubsetPicks:
    """The criterion's pick repeated on every subset of k of the n models."""

    k: int
    subsets: int
    at_least_median: float  # fraction of subsets whose pick's accuracy ≥ the subset's median
    within_003_of_best: float  # fraction whose pick is within 0.03 of the subset's best
    mean_gap_to_best: float
    random_at_least_median: float  # the same rate for a pick made at random (the baseline)


def subset_picks(selection: CategoricalSelection, accuracy: Mapping[str, float], k: int,
                 criterion: str | None = None) -> SubsetPicks:
    """Repeat the pick on every k-subset of the models (the agreement recomputed within the subset).

    Args:
        selection: ``select_categorical`` over all n models (its pairwise agreements are reused).
        accuracy: model id → accuracy, for judging only.
        k: subset size (2 ≤ k ≤ n).
        criterion: default the selection's own.

    Returns:
        ``SubsetPicks`` over all C(n, k) subsets.
    """
    criterion = criterion or selection.criterion
    ids = list(selection.pairwise.index)
    n = len(ids)
    if not 2 <= k <= n:
        raise ValueError(f"k={k}: need 2 <= k <= {n}")
    pair = selection.pairwise.to_numpy()
    single = selection.scores.set_index("model_id")[criterion].reindex(ids).to_numpy()
    acc = np.array([float(accuracy[m]) for m in ids])
    hits = near = gap = rand = 0.0
    count = 0
    for sub in itertools.combinations(range(n), k):
        idx = np.array(sub)
        if criterion == "agreement":
            block = pair[np.ix_(idx, idx)]
            score = np.nanmean(block, axis=1)
        else:
            score = single[idx]
        # Ties go to the smallest id, as in select_categorical (ids are sorted there and here).
        pick = idx[int(np.argmax(score))]
        a = acc[idx]
        med, best = float(np.median(a)), float(a.max())
        hits += acc[pick] >= med - 1e-12
        near += acc[pick] >= best - 0.03 - 1e-12
        gap += best - acc[pick]
        rand += float(np.mean(a >= med - 1e-12))
        count += 1
    return SubsetPicks(k, count, hits / count, near / count, gap / count, rand / count)


def accuracies(posteriors: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Each model's Hungarian-matched categorical accuracy (the judge; never the criterion's input).

    Args:
        posteriors: model id → (N, K) Q posteriors.
        labels: (N,) true classes of the same images.

    Returns:
        model id → accuracy in [0, 1].
    """
    from infogan.metrics.categorical import categorical_scores

    return {k: categorical_scores(np.asarray(p).argmax(axis=1), labels)["cat_accuracy"] for k, p in posteriors.items()}


def load_posteriors(run_dirs: Sequence[str | os.PathLike[str]], n_images: int = 0, code: int = 0,
                    step: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, Any]]:
    """Q's posterior over one categorical code on the same real images, for each run's checkpoint.

    Args:
        run_dirs: directories written by ``python -m infogan.train --out`` (same dataset and size).
        n_images: real images (the dataset's fixed evaluation draw, ``EVAL_SEED``); 0 = the run's
            ``data.eval_size`` (for digits: all 1,797).
        code: which categorical code.
        step: the checkpoint step (default each run's latest).

    Returns:
        (run name → (N, K) float64 posteriors, the images' labels or None, facts about the runs:
        ``steps`` per run, the shared ``data`` keys and ``seeds`` per run).
    """
    import torch

    from infogan import checkpoint as ckpt
    from infogan.config import Config
    from infogan.data import load_dataset
    from infogan.metrics.suite import EVAL_SEED, eval_mode, inference_model
    from infogan.model import build
    from infogan.run_writer import latest_checkpoint

    names = [Path(r).name for r in run_dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"run directories must have distinct names (they label the models): {names}")
    posteriors: dict[str, np.ndarray] = {}
    steps: dict[str, int] = {}
    seeds: dict[str, int] = {}
    labels: np.ndarray | None = None
    images = None
    first: dict[str, Any] = {}
    for run, name in zip(run_dirs, names, strict=True):
        if step is None:
            found = latest_checkpoint(run)
            if found is None:
                raise FileNotFoundError(f"{run} has no checkpoint (checkpoints/latest.json)")
            path = found[1]
        else:
            path = Path(run) / "checkpoints" / f"step_{step:08d}"
        state = ckpt.load(path)  # torch.load(weights_only=True)
        cfg = Config.from_flat(state.config)
        if not cfg.codes.categorical or code >= len(cfg.codes.categorical):
            raise ValueError(f"{run}: no categorical code number {code} (codes.categorical={cfg.codes.categorical})")
        data = {"data.name": cfg.data.name, "model.image_size": cfg.model.image_size,
                "model.channels": cfg.model.channels}
        if images is None:
            first = data
            dataset = load_dataset(cfg, "cpu")
            images, labels = dataset.eval_set(n_images or cfg.data.eval_size, EVAL_SEED)  # (N, C, H, W)
        elif data != first:
            raise ValueError(f"{run} was trained on {data}, {run_dirs[0]} on {first}: their codes would not "
                             "describe the same images")
        _, d = build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned")
        d.load_state_dict(state.discriminator)
        q_net = inference_model(d)
        out = []
        with eval_mode(q_net), torch.inference_mode():
            for start in range(0, len(images), 500):
                logits = q_net.q(q_net.features(images[start:start + 500])).logits[code]  # (B, K)
                out.append(torch.softmax(logits.double(), dim=1).numpy())
        posteriors[name] = np.concatenate(out)
        steps[name] = int(state.step)
        seeds[name] = int(cfg.train.seed)
    return posteriors, labels, {"steps": steps, "seeds": seeds, "data": first}


def selection_figure(judgement: Judgement, pairwise: pd.DataFrame):
    """Accuracy against the criterion per model (the pick ringed, median and best dashed), and
    the pairwise agreement matrix ordered by accuracy.

    Returns:
        A matplotlib Figure (Agg, object API).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax, hm = fig.subplots(1, 2)
    t = judgement.table
    ax.scatter(t["agreement"], t["accuracy"], color="tab:blue", zorder=3)
    for _, row in t.iterrows():
        ax.annotate(str(row["model_id"]), (row["agreement"], row["accuracy"]), textcoords="offset points",
                    xytext=(5, 3), fontsize=8)
    sel = t[t["picked"]]
    ax.scatter(sel["agreement"], sel["accuracy"], s=220, facecolors="none", edgecolors="tab:red", linewidths=2,
               zorder=4, label=f"label-free pick ({judgement.selected})")
    ax.axhline(judgement.median_accuracy, color="grey", ls="--", lw=1, label=f"median of {judgement.n}")
    ax.axhline(judgement.best_accuracy, color="black", ls=":", lw=1, label="best")
    rho = judgement.correlations[CRITERIA.index("agreement")]
    ax.set_xlabel("agreement with the other seeds (mean Hungarian-matched)")
    ax.set_ylabel("categorical accuracy (labels, judging only)")
    ax.set_title(f"Spearman ρ = {rho.rho:.2f} [{rho.low:.2f}, {rho.high:.2f}], n = {rho.n}", fontsize=10)
    ax.margins(x=0.15, y=0.1)  # room for the seed labels beside the outermost points
    ax.legend(fontsize=8, loc="best")
    order = list(t["model_id"])
    mat = pairwise.loc[order, order].to_numpy()
    im = hm.imshow(mat, cmap="viridis", vmin=np.nanmin(mat), vmax=np.nanmax(mat))
    hm.set_xticks(range(len(order)), order, rotation=90, fontsize=8)
    hm.set_yticks(range(len(order)), [f"{m} ({a:.3f})" for m, a in zip(order, t["accuracy"], strict=True)], fontsize=8)
    hm.set_title("pairwise agreement (rows: best accuracy first)", fontsize=10)
    fig.colorbar(im, ax=hm, shrink=0.8)
    return fig


def _fmt(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


def selection_markdown(judgement: Judgement, subsets: SubsetPicks | None, figure_name: str | None,
                       facts: Mapping[str, Any]) -> str:
    """The selection table and what it says, as Markdown.

    Args:
        judgement: ``judge``'s result.
        subsets: ``subset_picks``' result, or None.
        figure_name: file name of the figure beside the page, or None.
        facts: ``load_posteriors``' facts (steps and seeds per run, data).

    Returns:
        Markdown text.
    """
    from sweeps.ranking import markdown_table

    t = judgement.table.copy()
    t.insert(1, "seed", [facts.get("seeds", {}).get(m, "") for m in t["model_id"]])
    t.insert(2, "step", [facts.get("steps", {}).get(m, "") for m in t["model_id"]])
    t["picked"] = ["**pick**" if p else "" for p in t["picked"]]
    for col in ("accuracy", *CRITERIA):
        t[col] = [f"{v:.3f}" for v in t[col]]
    data = facts.get("data", {})
    lines = [f"# Label-free pick among {judgement.n} seeds ({data.get('data.name', '?')}, categorical code)", ""]
    if figure_name:
        lines += [f"![selection]({figure_name})", ""]
    lines += [
        f"Criterion: **{CRITERION}** (ModelCentrality over the categorical code: each seed's clustering of the "
        "same real images scored against every other seed's by Hungarian-matched agreement; no labels). "
        "`information` (Q's I(x; c) on real images, nats) and `confidence` (Q's mean top posterior) are shown "
        "beside it, not used to pick. Accuracy is Hungarian-matched against the labels and only judges the pick.",
        "",
        markdown_table(t),
        "",
        "| n seeds | pick | pick's accuracy | median | best | pick − median | best − pick |",
        "|---|---|---|---|---|---|---|",
        f"| {judgement.n} | {judgement.selected} (rank {judgement.selected_accuracy_rank} of {judgement.n}) | "
        f"{judgement.selected_accuracy:.3f} | {judgement.median_accuracy:.3f} | {judgement.best_accuracy:.3f} "
        f"({judgement.best_id}) | {judgement.selected_accuracy - judgement.median_accuracy:+.3f} | "
        f"{judgement.best_accuracy - judgement.selected_accuracy:.3f} |",
        "",
        "Each criterion's rank correlation with accuracy (Spearman ρ over the n seeds; 95% interval: Fisher z with "
        "Bonett–Wright's variance; p: exact permutation test for n ≤ 9):",
        "",
        "| criterion | n | ρ | 95% interval | p |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {c.criterion} | {c.n} | {_fmt(c.rho)} | [{_fmt(c.low)}, {_fmt(c.high)}] | {_fmt(c.p_value)} |"
              for c in judgement.correlations]
    if subsets is not None:
        lines += [
            "",
            f"The pick repeated on every subset of {subsets.k} of the {judgement.n} seeds ({subsets.subsets} subsets, "
            "agreement recomputed within each): the pick's accuracy ≥ the subset's median in "
            f"{subsets.at_least_median:.1%} of them (a random pick: {subsets.random_at_least_median:.1%}), within "
            f"0.03 of the subset's best in {subsets.within_003_of_best:.1%}; mean gap to the best "
            f"{subsets.mean_gap_to_best:.3f}.",
        ]
    return "\n".join(lines) + "\n"


def write_selection(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                    name: str = "selection", n_images: int = 0, step: int | None = None,
                    subset_size: int = 8) -> tuple[Path, Path, Judgement]:
    """Pick among run directories without labels, judge the pick with labels, write table + figure.

    Args:
        run_dirs: run directories (the seeds of one config).
        out_dir: folder for ``<name>.md`` and ``<name>.png``.
        name: file name stem.
        n_images: real images (0 = the run's ``data.eval_size``).
        step: checkpoint step (default each run's latest).
        subset_size: k of ``subset_picks`` (done only when there are more runs than k).

    Returns:
        The page's and the figure's paths, and the judgement.
    """
    from analysis.plots import save
    from infogan.atomic import atomic_path

    if len(run_dirs) < 3:
        raise ValueError(f"{len(run_dirs)} run(s): a median and a pick need at least 3 seeds")
    posteriors, labels, facts = load_posteriors(run_dirs, n_images=n_images, step=step)
    if labels is None:
        raise ValueError(f"dataset {facts['data'].get('data.name')!r} has no labels: nothing to judge the pick with")
    selection = select_categorical(posteriors)  # made before the labels are read, and without them
    accuracy = accuracies(posteriors, labels)
    judgement = judge(selection, accuracy)
    subsets = subset_picks(selection, accuracy, subset_size) if len(run_dirs) > subset_size else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = save(selection_figure(judgement, selection.pairwise), out / f"{name}.png")
    page = out / f"{name}.md"
    with atomic_path(page) as tmp:
        tmp.write_text(selection_markdown(judgement, subsets, figure.name, facts))
    return page, figure, judgement
