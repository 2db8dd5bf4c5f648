"""The evaluation metrics, declared once: every ``eval/`` metric a run reports, the family that
computes it (the names ``eval.intermediate`` / ``eval.final`` take), its direction (higher or
lower is better), whether it scores the model or describes the evaluation, what a dataset must
have for it, and its short label; then the sets every layer shows, ranks by and states its
answers in (``HEADLINE``, ``ANSWER``, ``SUPERVISED``, ``default_metric``).

Readers: ``infogan.config`` (the family names and which need ground-truth factors),
``infogan.metrics.suite`` (what each family reports), ``sweeps.record`` and ``sweeps.settings``
(the default objective), ``sweeps.summary`` and ``sweeps.answer`` (the columns and the answer's
metrics), ``analysis.schema`` (a column's direction and whether it is a quality metric),
``analysis.ranking``, ``analysis.report``, ``analysis.runs`` and ``analysis.synthetic``.
Standard library only: ``sweeps.record`` loads it, and reading tables must not pull in torch.
"""

from __future__ import annotations

from dataclasses import dataclass

EVAL_PREFIX = "eval/"
MAX, MIN = "max", "min"
FACTORS, LABELS, ANY = "factors", "labels", "any"  # what a dataset must have for a metric


@dataclass(frozen=True)
class Metric:
    """One reported ``eval/`` metric.

    Attributes:
        name: the reported key (``eval/mig``): MLflow metric, Tune result key, Parquet column stem.
        family: the ``eval.intermediate`` / ``eval.final`` family that computes it (None: every
            evaluation reports it).
        direction: ``max`` (higher is better) or ``min``.
        quality: it scores the model; False for what describes the evaluation (its time, a
            probe's fit on its own training data, how many codes a metric kept).
        needs: ``factors`` (ground-truth factors: dSprites), ``labels`` (class labels and a
            categorical code) or ``any``.
        label: the column title people read.
    """

    name: str
    family: str | None
    direction: str
    quality: bool
    needs: str
    label: str


CATALOGUE: tuple[Metric, ...] = (
    # family order = the order eval.final=all runs them and the help text lists them
    Metric("eval/cat_accuracy", "categorical", MAX, True, LABELS, "cat. accuracy"),
    Metric("eval/cat_nmi", "categorical", MAX, True, LABELS, "cat. NMI"),
    Metric("eval/mig", "mig", MAX, True, FACTORS, "MIG"),
    Metric("eval/dci_disentanglement", "dci", MAX, True, FACTORS, "DCI dis."),
    Metric("eval/dci_completeness", "dci", MAX, True, FACTORS, "DCI compl."),
    Metric("eval/dci_informativeness", "dci", MAX, True, FACTORS, "DCI inf."),
    Metric("eval/dci_informativeness_train", "dci", MAX, False, FACTORS, "DCI inf. (train)"),
    Metric("eval/sap", "sap", MAX, True, FACTORS, "SAP"),
    Metric("eval/modularity", "modularity", MAX, True, FACTORS, "modularity"),
    Metric("eval/explicitness", "modularity", MAX, True, FACTORS, "explicitness"),
    Metric("eval/explicitness_train", "modularity", MAX, False, FACTORS, "explicitness (train)"),
    Metric("eval/factor_vae", "factor_vae", MAX, True, FACTORS, "FactorVAE"),
    Metric("eval/factor_vae_train", "factor_vae", MAX, False, FACTORS, "FactorVAE (train)"),
    Metric("eval/factor_vae_num_active", "factor_vae", MAX, False, FACTORS, "FactorVAE active codes"),
    Metric("eval/beta_vae", "beta_vae", MAX, True, FACTORS, "BetaVAE"),
    Metric("eval/beta_vae_train", "beta_vae", MAX, False, FACTORS, "BetaVAE (train)"),
    Metric("eval/fid", "fid", MIN, True, ANY, "FID"),
    Metric("eval/seconds", None, MIN, False, ANY, "eval seconds"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}

# The metric families, in order: the names eval.intermediate / eval.final accept.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(m.family for m in CATALOGUE if m.family is not None))
# Families that need a dataset with ground-truth factors (dSprites): left out on other datasets.
GROUND_TRUTH_FAMILIES: frozenset[str] = frozenset(m.family for m in CATALOGUE if m.needs == FACTORS and m.family)

# Shown beside a sweep's objective wherever trials are listed (the closing table, leaderboards,
# progress lines, the study table, learning curves), when the trials report them.
HEADLINE: tuple[str, ...] = ("eval/mig", "eval/factor_vae", "eval/beta_vae", "eval/dci_disentanglement",
                             "eval/cat_accuracy", "eval/fid")
# What a sweep's confirmed answer is stated in (mean and interval over seeds, difference from the
# recipe), when the trials report them: disentanglement on factors, accuracy on labels, image
# quality. Few on purpose: every metric added widens every interval of the answer (the
# comparisons are corrected for their number, sweeps.answer).
ANSWER: tuple[str, ...] = ("eval/mig", "eval/factor_vae", "eval/cat_accuracy", "eval/fid")
# Quality metrics that need labels or factors: what an unsupervised pick is checked against.
SUPERVISED: tuple[str, ...] = tuple(m.name for m in CATALOGUE if m.quality and m.needs in (FACTORS, LABELS))

# The default ranking metric (a sweep's objective, the report's leaderboard) per dataset: MIG
# where ground-truth factors exist, categorical accuracy on labelled datasets.
DEFAULT_METRIC_BY_DATASET: dict[str, str] = {"dsprites": "eval/mig", "digits": "eval/cat_accuracy",
                                             "mnist": "eval/cat_accuracy", "fashion_mnist": "eval/cat_accuracy"}
DEFAULT_METRIC = DEFAULT_METRIC_BY_DATASET["dsprites"]  # the default dataset's
FID = "eval/fid"  # the image-quality metric of the Pareto fronts (lower is better)


def default_metric(dataset: str) -> str:
    """The default ranking metric of a dataset (``DEFAULT_METRIC_BY_DATASET``).

    Raises:
        ValueError: an unknown dataset, naming the known ones.
    """
    try:
        return DEFAULT_METRIC_BY_DATASET[dataset]
    except KeyError:
        raise ValueError(f"no default metric for dataset {dataset!r}; known: "
                         f"{', '.join(DEFAULT_METRIC_BY_DATASET)}") from None


def family_metrics(family: str) -> tuple[str, ...]:
    """The metric names (without ``eval/``) a family reports, in catalogue order."""
    return tuple(m.name.removeprefix(EVAL_PREFIX) for m in CATALOGUE if m.family == family)


def direction(name: str) -> str:
    """``max`` (higher is better) or ``min`` for a reported metric.

    A catalogued metric has its declared direction; other names (``train/`` losses, a newer
    version's ``eval/`` metric) follow the naming rule: FIDs, losses and NLLs are lower-is-better,
    as is the step a run diverged at; the rest higher-is-better.
    """
    if name in BY_NAME:
        return BY_NAME[name].direction
    leaf = name.rsplit("/", 1)[-1]
    if leaf.startswith(("fid", "loss", "nll")) or leaf == "diverged_step":
        return MIN
    return MAX


def is_quality(name: str) -> bool:
    """Whether a reported metric scores the model (MIG, FID, accuracies, ...) rather than
    describing the run or the evaluation. Uncatalogued ``eval/`` names (a newer version's) count
    as quality unless they are a probe's training score (``*_train``); ``train/`` and ``time/``
    metrics never do."""
    if name in BY_NAME:
        return BY_NAME[name].quality
    return name.startswith(EVAL_PREFIX) and not name.endswith("_train")


def label(name: str) -> str:
    """The short title of a metric (``MIG``), or the name without its family prefix."""
    return BY_NAME[name].label if name in BY_NAME else name.split("/", 1)[-1]
