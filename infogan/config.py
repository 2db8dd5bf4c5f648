"""Configuration: one frozen, validated dataclass per concern, and the flat dotted-key view.

Every knob has one name everywhere: ``loss.lambda_cont`` is the Optuna parameter, the Tune
config key, the MLflow param, the Parquet column and the CLI flag ``--loss.lambda_cont``.
``Config.from_flat`` accepts exactly those keys (unknown keys are errors) and coerces strings
(from a CLI or MLflow) to the field's type; every field is checked in ``__post_init__`` and a bad
value raises ``ValueError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# --------------------------------------------------------------------------------------------
# Field specs: every field carries a check and a human-readable description of what is allowed.


def _spec(default: Any, check: Callable[[Any], bool], allowed: str, kind: type | str) -> Any:
    """A dataclass field whose metadata says how to coerce and validate it."""
    return field(default=default, metadata={"check": check, "allowed": allowed, "kind": kind})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _int(lo: int, hi: int | None = None, default: int = 0) -> Any:
    allowed = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return _spec(default, lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi), allowed, int)


def _float(lo: float, hi: float | None = None, default: float = 0.0, lo_open: bool = False) -> Any:
    lo_txt = f"> {lo}" if lo_open else f">= {lo}"
    allowed = f"a finite number {lo_txt}" + ("" if hi is None else f" and <= {hi}")

    def check(v: Any) -> bool:
        return (
            _is_num(v)
            and (v > lo if lo_open else v >= lo)
            and (hi is None or v <= hi)
        )

    return _spec(default, check, allowed, float)


def _choice(default: str, *choices: str) -> Any:
    return _spec(default, lambda v: v in choices, "one of " + ", ".join(map(repr, choices)), str)


def _bool(default: bool) -> Any:
    return _spec(default, lambda v: isinstance(v, bool), "true or false", bool)


def _int_tuple(default: tuple[int, ...], lo: int, max_len: int) -> Any:
    return _spec(
        default,
        lambda v: isinstance(v, tuple) and len(v) <= max_len and all(_is_int(x) and x >= lo for x in v),
        f"a list of at most {max_len} integers >= {lo} (e.g. '10' or '10,3'; '' for none)",
        "int_tuple",
    )


# The evaluation suite's metric families, as named in ``eval.intermediate`` / ``eval.final``.
METRIC_FAMILIES = ("categorical", "mig", "dci", "sap", "modularity", "factor_vae", "beta_vae", "fid")


def _metric_set(default: str) -> Any:
    def check(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        parts = [p.strip() for p in v.split(",") if p.strip()]
        return v.strip() in ("all", "none") or (bool(parts) and all(p in METRIC_FAMILIES for p in parts))

    return _spec(default, check, "'all', 'none' or a comma-separated list of " + ", ".join(METRIC_FAMILIES), str)


def metric_set(value: str) -> frozenset[str]:
    """The metric families an ``eval.intermediate`` / ``eval.final`` value names."""
    value = value.strip()
    if value == "all":
        return frozenset(METRIC_FAMILIES)
    if value == "none":
        return frozenset()
    return frozenset(p.strip() for p in value.split(",") if p.strip())


def _opt_str(default: str | None) -> Any:
    return _spec(default, lambda v: v is None or (isinstance(v, str) and v != ""), "a non-empty path or none", "opt_str")


class _Validated:
    """Mixin: validate every field against its spec after construction."""

    def __post_init__(self) -> None:
        section = _SECTION_OF.get(type(self), type(self).__name__)
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            # Lists are accepted for tuple fields; normalise so the frozen value is hashable.
            if f.metadata.get("kind") == "int_tuple" and isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if f.metadata.get("kind") is float and _is_int(value):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if not f.metadata["check"](value):
                raise ValueError(
                    f"invalid config value {section}.{f.name}={value!r}: "
                    f"allowed is {f.metadata['allowed']}"
                )
        self._check_cross_fields()

    def _check_cross_fields(self) -> None:
        """Hook for checks that involve several fields of the same section."""


# --------------------------------------------------------------------------------------------
# The sections.


@dataclass(frozen=True)
class CodesConfig(_Validated):
    """Latent layout: noise z, categorical codes and continuous codes (prior Unif(-1, 1))."""

    noise_dim: int = _int(0, 1024, default=5)
    categorical: tuple[int, ...] = _int_tuple((), lo=2, max_len=8)
    n_continuous: int = _int(0, 64, default=5)
    noise_dist: str = _choice("uniform", "uniform", "normal")

    def _check_cross_fields(self) -> None:
        if self.n_codes == 0:
            raise ValueError(
                "invalid config: codes.categorical=() and codes.n_continuous=0 leave no latent "
                "code to learn; allowed is at least one categorical or continuous code"
            )

    @property
    def n_codes(self) -> int:
        return len(self.categorical) + self.n_continuous

    @property
    def latent_dim(self) -> int:
        """Width of G's input: noise + one-hot categorical codes + continuous codes."""
        return self.noise_dim + sum(self.categorical) + self.n_continuous


@dataclass(frozen=True)
class ModelConfig(_Validated):
    """Networks: image size, architecture family and a width multiplier for cheap runs."""

    image_size: int = _spec(64, lambda v: v in (28, 32, 64), "one of 28, 32, 64", int)
    channels: int = _int(1, 4, default=1)
    arch: str = _choice("auto", "auto", "mnist", "conv")
    width: float = _float(0.0, 8.0, default=1.0, lo_open=True)
    # D/Q normalisation: batch norm where the paper has it, spectral norm on every D/Q layer and
    # no batch norm (InfoGAN-CR's "InfoGAN (modified)", the default), or neither.
    d_norm: str = _choice("spectral", "batch", "spectral", "none")
    leak: float = _float(0.0, 0.99, default=0.2)  # D's leaky-ReLU slope (paper MNIST 0.1, InfoGAN-CR 0.2)

    def _check_cross_fields(self) -> None:
        if self.resolved_arch == "conv" and self.image_size not in (32, 64):
            raise ValueError(
                f"invalid config value model.arch='conv' with model.image_size={self.image_size}: "
                "the conv architecture needs image_size 32 or 64; use model.arch='mnist' for 28"
            )

    @property
    def resolved_arch(self) -> str:
        """'mnist' (the paper's 28x28 networks) for 28 px, the dSprites-style conv stack otherwise."""
        if self.arch != "auto":
            return self.arch
        return "mnist" if self.image_size == 28 else "conv"


@dataclass(frozen=True)
class LossConfig(_Validated):
    """GAN loss and the weights of the mutual-information terms."""

    gan: str = _choice("bce", "bce", "lsgan")
    lambda_cat: float = _float(0.0, 100.0, default=1.0)
    lambda_cont: float = _float(0.0, 100.0, default=0.05)
    q_std: str = _choice("fixed", "fixed", "learned")
    q_update: str = _choice("with_d", "with_d", "with_g")
    # InfoGAN-CR's contrastive regulariser: weight of the CR classifier's cross-entropy in G's
    # loss (0 = plain InfoGAN), applied, and its classifier trained, from step cr_start on.
    lambda_cr: float = _float(0.0, 100.0, default=0.0)
    cr_start: int = _int(0, 10_000_000, default=0)


@dataclass(frozen=True)
class OptimConfig(_Validated):
    """Adam for D (trunk + D head), G and Q's head."""

    lr_d: float = _float(0.0, 1e4, default=2e-3, lo_open=True)
    lr_g: float = _float(0.0, 1e4, default=1e-3, lo_open=True)
    lr_q: float = _float(0.0, 1e4, default=2e-3, lo_open=True)
    lr_cr: float = _float(0.0, 1e4, default=2e-3, lo_open=True)  # InfoGAN-CR's classifier
    beta1: float = _float(0.0, 0.999, default=0.5)
    beta2: float = _float(0.0, 0.99999, default=0.999)


@dataclass(frozen=True)
class DataConfig(_Validated):
    """Which dataset, and where its files are (MNIST-style datasets only)."""

    name: str = _choice("dsprites", "dsprites", "digits", "mnist", "fashion_mnist")
    root: str = _spec("data", lambda v: isinstance(v, str) and v != "", "a non-empty path", str)
    download: bool = _bool(False)
    eval_size: int = _int(16, 1_000_000, default=2000)


@dataclass(frozen=True)
class TrainConfig(_Validated):
    """The loop: budget, batch, seed, device, precision and intervals."""

    steps: int = _int(1, 10_000_000, default=2000)
    batch_size: int = _int(2, 65536, default=64)
    g_steps: int = _int(1, 16, default=2)  # G updates per D update, on the same latent batch (InfoGAN-CR: 2)
    seed: int = _int(0, 2**31 - 1, default=0)
    device: str = _choice("auto", "auto", "cpu", "cuda")
    precision: str = _choice("auto", "auto", "fp32", "bf16", "fp16")
    eval_every: int = _int(1, 10_000_000, default=500)
    checkpoint_every: int = _int(1, 10_000_000, default=500)
    log_every: int = _int(1, 10_000_000, default=50)
    threads: int = _int(0, 1024, default=0)
    # A GAN whose losses reach this size has blown up long before they overflow to inf.
    max_loss: float = _float(0.0, 1e30, default=1e6, lo_open=True)

    @property
    def images_per_step(self) -> int:
        """Training work of one step in images: a batch for the D update and one for each G update.

        A scheduler's clock (``train/images``): a recipe with two G steps per D step does 1.5x the
        work of one with one, and is compared at equal work, not at equal steps. (InfoGAN-CR's
        pairs are not counted: its CR phase is a short tail of a run.)
        """
        return self.batch_size * (1 + self.g_steps)


@dataclass(frozen=True)
class EvalConfig(_Validated):
    """Evaluation suite: which metrics when, their sample sizes (standard = disentanglement_lib's), FID.

    Staged evaluation: evaluations before a run's last step compute only the ``intermediate``
    families (what a scheduler and the curves need), with MIG on at most ``intermediate_points``
    points and FID on ``intermediate_fid_samples`` images; the last step computes the ``final``
    families at the full sizes. ``disentanglement`` and ``fid`` switch whole families off.
    """

    disentanglement: bool = _bool(True)  # MIG, FactorVAE, BetaVAE, DCI, SAP, modularity (factor datasets)
    fid: bool = _bool(True)
    intermediate: str = _metric_set("categorical,mig,fid")
    final: str = _metric_set("all")
    intermediate_points: int = _int(100, 10_000_000, default=10_000)
    intermediate_fid_samples: int = _int(16, 10_000_000, default=1_000)
    # DCI's per-factor importance model: a random forest (fast, the default) or scikit-learn's
    # GradientBoostingClassifier as disentanglement_lib uses (slow; for published comparisons).
    dci_model: str = _choice("forest", "forest", "gradient_boosting")
    num_points: int = _int(100, 10_000_000, default=10_000)  # MIG/DCI/SAP/modularity training points
    mig_points: int = _int(0, 10_000_000, default=0)  # MIG's own sample size; 0 = num_points
    num_test: int = _int(50, 10_000_000, default=5_000)  # DCI/SAP/explicitness held-out points
    num_votes_train: int = _int(10, 10_000_000, default=10_000)  # FactorVAE / BetaVAE
    num_votes_eval: int = _int(10, 10_000_000, default=5_000)
    vote_batch: int = _int(2, 4096, default=64)
    fid_samples: int = _int(16, 10_000_000, default=10_000)
    fid_net_steps: int = _int(1, 1_000_000, default=400)  # training steps of the FID feature net
    feature_net: str = _choice("lenet", "lenet", "inception")
    inception_weights: str | None = _opt_str(None)
    cache_dir: str = _spec("~/.cache/infogan-sweeps", lambda v: isinstance(v, str) and v != "",
                           "a non-empty path", str)

    def _check_cross_fields(self) -> None:
        # Inception weights are never downloaded: without a local file the run would only
        # fail at its first evaluation, after training for eval_every steps.
        if self.fid and self.feature_net == "inception" and self.inception_weights is None:
            raise ValueError(
                "invalid config value eval.inception_weights=None with eval.feature_net='inception' "
                "and eval.fid=True: allowed is the path of a local Inception-v3 weights file "
                "(torch-fidelity's 'weights-inception-2015-12-05-6726825d.pth'; nothing is downloaded), "
                "or use eval.feature_net='lenet' or eval.fid=false"
            )


_SECTIONS: dict[str, type] = {
    "codes": CodesConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
}
_SECTION_OF = {cls: name for name, cls in _SECTIONS.items()}


@dataclass(frozen=True)
class Config:
    """The whole experiment: one section per concern. ``Config()`` is the embedded default."""

    codes: CodesConfig = field(default_factory=CodesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_flat(self) -> dict[str, Any]:
        """Dotted flat dict, e.g. ``{"loss.lambda_cont": 0.05, ...}``; tuples become lists."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            for f in fields(section):
                value = getattr(section, f.name)
                out[f"{name}.{f.name}"] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], base: Config | None = None) -> Config:
        """Build a config from dotted keys on top of ``base`` (default: ``Config()``).

        Values may be typed or strings (CLI, MLflow); unknown keys raise ``ValueError``.
        """
        base = base or cls()
        updates: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, raw in flat.items():
            section_name, _, field_name = key.partition(".")
            section_cls = _SECTIONS.get(section_name)
            field_map = {f.name: f for f in fields(section_cls)} if section_cls else {}
            if field_name not in field_map:
                raise ValueError(unknown_key_message(key))
            updates[section_name][field_name] = _coerce(key, raw, field_map[field_name].metadata["kind"])
        sections = {
            name: dataclasses.replace(getattr(base, name), **updates[name]) if updates[name] else getattr(base, name)
            for name in _SECTIONS
        }
        return cls(**sections)

    def replace(self, **flat: Any) -> Config:
        """Convenience: ``cfg.replace(**{"train.steps": 10})``."""
        return Config.from_flat(flat, base=self)


def _coerce(key: str, raw: Any, kind: type | str) -> Any:
    """Turn a CLI/MLflow string (or a typed value) into the field's type; leave checks to the dataclass."""
    if type(raw).__module__ == "numpy" and hasattr(raw, "item"):  # a value from pandas or Tune's frames
        raw = raw.item()
    if not isinstance(raw, str):
        if kind == "int_tuple" and _is_int(raw):
            return (raw,)
        return raw
    text = raw.strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            return text
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind == "int_tuple":
            text = text.strip("[]() ")
            return tuple(int(p) for p in text.replace(" ", "").split(",") if p)
        if kind == "opt_str":
            return None if text.lower() in ("", "none", "null") else text
    except ValueError:
        meta = _field_meta(key)
        raise ValueError(f"invalid config value {key}={raw!r}: allowed is {meta['allowed']}") from None
    return text


def _field_meta(key: str) -> Mapping[str, Any]:
    section, _, name = key.partition(".")
    return {f.name: f for f in fields(_SECTIONS[section])}[name].metadata


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, str]:
    """``"loss.lambda_cont=0.1"`` -> ``("loss.lambda_cont", "0.1")``: the one override syntax of
    every CLI (``--set KEY=VALUE``); the value is typed and checked by ``Config.from_flat``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{flag} expects KEY=VALUE with a config key, got {text!r}")
    key = key.strip()
    if key not in KEYS:
        raise ValueError(f"{flag}: {unknown_key_message(key)}")
    return key, raw


def unknown_key_message(key: str, where: str = "", flag: bool = False) -> str:
    """One line for a key that is not a config key: the closest keys, not all of them.

    Args:
        key: the unknown dotted key.
        where: where it was found, e.g. " in the search space".
        flag: name keys as command-line flags (``--loss.lambda_cat``).
    """
    import difflib

    name = (lambda k: f"'--{k}'") if flag else repr
    close = difflib.get_close_matches(key, KEYS, n=3, cutoff=0.6)
    section = key.partition(".")[0]
    in_section = [k for k in KEYS if k.startswith(section + ".")]
    hint = (f"did you mean {' or '.join(name(k) for k in close)}?" if close else
            f"the {section!r} keys are {', '.join(name(k) for k in in_section)}" if in_section else
            f"the sections are {', '.join(sorted({k.partition('.')[0] for k in KEYS}))}")
    return f"unknown {'flag' if flag else 'config key'} {name(key)}{where}; {hint}"


def value_kind(key: str) -> str:
    """The column kind of a dotted key: ``"int"``, ``"float"``, ``"bool"`` or ``"string"`` (code
    tuples are their comma-joined text, ``"10,3"``; optional paths are text)."""
    kind = _field_meta(key)["kind"]
    return {int: "int", float: "float", bool: "bool"}.get(kind, "string")  # type: ignore[call-overload]


def coerce_value(key: str, raw: Any) -> Any:
    """One key's value from text or a typed value, checked against the key's spec alone (no
    cross-field checks, no ``Config`` built): the fast path for reading many records back.

    Raises:
        ValueError: an unknown key, or a value that does not parse or is not allowed.
    """
    if key not in KEYS:
        raise ValueError(unknown_key_message(key))
    meta = _field_meta(key)
    value = _coerce(key, raw, meta["kind"])
    if meta["kind"] is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if meta["kind"] == "int_tuple" and isinstance(value, list):
        value = tuple(value)
    if not meta["check"](value):
        raise ValueError(f"invalid config value {key}={raw!r}: allowed is {meta['allowed']}")
    return value


def describe(key: str) -> str:
    """What values a dotted key allows, for ``--help`` texts."""
    return str(_field_meta(key)["allowed"])


KEYS: tuple[str, ...] = tuple(Config().to_flat())

# What changing a key does to an experiment, written once: the resume check (infogan.train) and
# the analysis's config identity (sweeps.record.config_id) both read it.
#   seed        the training seed: same experiment, another draw
#   machine     where it runs, no effect on a number (threads, data folder, download)
#   numerics    how it computes: same experiment, other rounding (device, precision)
#   bookkeeping when it logs, checkpoints and evaluates
#   budget      how long it trains
#   evaluation  what is measured and how (eval.*, the labelled evaluation set's size)
#   model       everything else: the networks, codes, losses, optimiser, data
_ROLES = {
    "train.seed": "seed",
    "train.threads": "machine", "data.root": "machine", "data.download": "machine",
    "train.device": "numerics", "train.precision": "numerics",
    "train.eval_every": "bookkeeping", "train.checkpoint_every": "bookkeeping", "train.log_every": "bookkeeping",
    "train.steps": "budget",
    "data.eval_size": "evaluation",
}


def key_role(key: str) -> str:
    """The role of a dotted config key (see ``_ROLES``)."""
    if key.startswith("eval."):
        return "evaluation"
    return _ROLES.get(key, "model")


# Keys two runs may differ in and still be "the same config" (seed spread groups them).
NON_SEMANTIC_KEYS = frozenset(k for k in KEYS if key_role(k) in ("seed", "machine", "numerics", "bookkeeping"))
# Keys a resumed run may change: they do not alter the trajectory so far.
RESUMABLE_KEYS = frozenset(k for k in KEYS if key_role(k) in ("machine", "bookkeeping", "budget", "evaluation"))
