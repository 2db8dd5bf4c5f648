"""Comparisons on the trials table, one module per question, gathered here under one name for the
report, the notebooks and users (``from analysis import compare``):

- ``analysis.ranking``: which trials are best (leaderboard, Pareto front, status counts);
- ``analysis.effects``: what a knob does (levels, effect, study table, correlations);
- ``analysis.seeds``: how much seeds matter (spread, variance share);
- ``analysis.selection``: choosing without labels (ModelCentrality) and how the pick ranks.
"""

from __future__ import annotations

from analysis.effects import Effect, effect, effects, levels, study_table
from analysis.ranking import (
    DEFAULT_SUPERVISED,
    check_fid_comparable,
    leaderboard,
    pareto_front,
    resolve,
    status_counts,
    with_code_dims,
)
from analysis.seeds import seed_robustness, seed_variance_share
from analysis.selection import (
    NUM_BINS,
    Centrality,
    CodeMetric,
    discretize,
    mig_like,
    model_centrality,
    selection_report,
)

__all__ = [
    "DEFAULT_SUPERVISED", "NUM_BINS", "Centrality", "CodeMetric", "Effect", "check_fid_comparable", "discretize",
    "effect", "effects", "leaderboard", "levels", "mig_like", "model_centrality", "pareto_front", "resolve",
    "seed_robustness", "seed_variance_share", "selection_report", "status_counts", "study_table", "with_code_dims",
]
