"""Configuration: one frozen, validated pydantic model per concern, and the flat dotted-key view.

Every knob has one name everywhere: ``loss.lambda_cont`` is the Optuna parameter, the Tune
config key, the MLflow param, the Parquet column and the CLI flag ``--loss.lambda_cont``.
``Config.from_flat`` accepts exactly those keys (unknown keys are errors, with the closest keys
named) and coerces strings (from a CLI or MLflow) to the field's type through pydantic; bounds and
choices are declared on the fields, and a bad value raises ``ValueError`` naming the key, the value
and what is allowed (derived from the same declarations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from infogan import metric_catalogue

# The evaluation suite's metric families, as named in ``eval.intermediate`` / ``eval.final``, and
# those that need a dataset with ground-truth factors (dSprites; dropped from the sets elsewhere):
# declared with their metrics in infogan.metric_catalogue.
METRIC_FAMILIES = metric_catalogue.FAMILIES
GROUND_TRUTH_FAMILIES = metric_catalogue.GROUND_TRUTH_FAMILIES


def _not_bool(value: Any) -> Any:
    """Numbers are not booleans: ``True`` is refused where a count or a rate is expected."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # a value from pandas or Tune
        return value.item()
    return value


def _optional_path(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
        return None
    return value


def _int_tuple(value: Any) -> Any:
    """``"10,3"``, ``"[10, 3]"``, ``[10, 3]``, ``10`` or ``""`` -> a tuple of ints."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a code size")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        text = value.strip().strip("[]() ").replace(" ", "")
        try:
            return tuple(int(p) for p in text.split(",") if p)
        except ValueError:
            raise ValueError("not a list of integers") from None
    return tuple(value) if isinstance(value, list) else value


def _metric_set_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("not text")
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if value.strip() in ("all", "none") or (parts and all(p in METRIC_FAMILIES for p in parts)):
        return value
    raise ValueError("unknown metric family")


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
Path = Annotated[str, Field(min_length=1), BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]
MetricSet = Annotated[str, BeforeValidator(_metric_set_text),
                      Field(json_schema_extra={"allowed": "'all', 'none' or a comma-separated list of "
                                                          + ", ".join(METRIC_FAMILIES)})]


def metric_set(value: str) -> frozenset[str]:
    """The metric families an ``eval.intermediate`` / ``eval.final`` value names."""
    value = value.strip()
    if value == "all":
        return frozenset(METRIC_FAMILIES)
    if value == "none":
        return frozenset()
    return frozenset(p.strip() for p in value.split(",") if p.strip())


def _size_from_text(value: Any) -> Any:
    """An image size from text (``"64"``): a choice among ints, which pydantic matches exactly.
    Part of the annotation, so every reader of one key (``coerce_value``) types it the same way."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else _not_bool(value)


class _Section(BaseModel):
    """A frozen config section: unknown fields forbidden, NaN/inf refused, defaults checked too."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)


# --------------------------------------------------------------------------------------------
# The sections.


class CodesConfig(_Section):
    """Latent layout: noise z, categorical codes and continuous codes (prior Unif(-1, 1))."""

    noise_dim: Annotated[Int, Field(ge=0, le=1024)] = 5
    categorical: Annotated[tuple[Annotated[int, Field(ge=2)], ...], BeforeValidator(_int_tuple),
                           Field(max_length=8, json_schema_extra={
                               "allowed": "a list of at most 8 integers >= 2 (e.g. '10' or '10,3'; '' for none)"})] = ()
    n_continuous: Annotated[Int, Field(ge=0, le=64)] = 5
    noise_dist: Literal["uniform", "normal"] = "uniform"

    @model_validator(mode="after")
    def _some_code(self) -> CodesConfig:
        if self.n_codes == 0:
            raise ValueError(
                "invalid config: codes.categorical=() and codes.n_continuous=0 leave no latent "
                "code to learn; allowed is at least one categorical or continuous code"
            )
        return self

    @property
    def n_codes(self) -> int:
        return len(self.categorical) + self.n_continuous

    @property
    def latent_dim(self) -> int:
        """Width of G's input: noise + one-hot categorical codes + continuous codes."""
        return self.noise_dim + sum(self.categorical) + self.n_continuous


class ModelConfig(_Section):
    """Networks: image size, architecture family and a width multiplier for cheap runs."""

    image_size: Annotated[Literal[28, 32, 64], BeforeValidator(_size_from_text)] = 64
    # Every dataset here is greyscale: the networks would take more channels, no dataset gives them.
    channels: Annotated[Int, Field(ge=1, le=1, json_schema_extra={
        "allowed": "1 (every dataset here is greyscale)"})] = 1
    arch: Literal["auto", "mnist", "conv"] = "auto"
    width: Annotated[Float, Field(gt=0.0, le=8.0)] = 1.0
    # D/Q normalisation: batch norm where the paper has it, spectral norm on every D/Q layer and
    # no batch norm (InfoGAN-CR's "InfoGAN (modified)", the default), or neither.
    d_norm: Literal["batch", "spectral", "none"] = "spectral"
    leak: Annotated[Float, Field(ge=0.0, le=0.99)] = 0.2  # D's leaky-ReLU slope (paper MNIST 0.1, InfoGAN-CR 0.2)
    # G's output and the pixel range both networks see: sigmoid on images in [0, 1] (both official
    # codes) or tanh on [-1, 1]. Datasets, metrics and figures keep [-1, 1] outside the networks.
    output: Literal["sigmoid", "tanh"] = "sigmoid"
    # G's hidden blocks: act_bn = activation then batch norm, ReLU after the dense layers and leaky
    # ReLU (model.leak) after the deconvolutions (InfoGAN-CR); bn_act = batch norm then ReLU after
    # every hidden layer (openai/InfoGAN, DCGAN).
    g_blocks: Literal["act_bn", "bn_act"] = "act_bn"

    @model_validator(mode="after")
    def _arch_fits_size(self) -> ModelConfig:
        if self.resolved_arch == "conv" and self.image_size not in (32, 64):
            raise ValueError(
                f"invalid config value model.arch='conv' with model.image_size={self.image_size}: "
                "the conv architecture needs image_size 32 or 64; use model.arch='mnist' for 28"
            )
        return self

    @property
    def resolved_arch(self) -> str:
        """'mnist' (the paper's 28x28 networks) for 28 px, the dSprites-style conv stack otherwise."""
        if self.arch != "auto":
            return self.arch
        return "mnist" if self.image_size == 28 else "conv"


class LossConfig(_Section):
    """GAN loss and the weights of the mutual-information terms."""

    gan: Literal["bce", "lsgan"] = "bce"
    lambda_cat: Annotated[Float, Field(ge=0.0, le=100.0)] = 1.0
    lambda_cont: Annotated[Float, Field(ge=0.0, le=100.0)] = 0.05
    q_std: Literal["fixed", "learned"] = "fixed"
    q_update: Literal["with_d", "with_g"] = "with_d"
    # InfoGAN-CR's contrastive regulariser: weight of the CR classifier's cross-entropy in G's
    # loss (0 = plain InfoGAN), applied, and its classifier trained, from step cr_start on.
    lambda_cr: Annotated[Float, Field(ge=0.0, le=100.0)] = 0.0
    cr_start: Annotated[Int, Field(ge=0, le=10_000_000)] = 0


class OptimConfig(_Section):
    """Adam for D (trunk + D head), G and Q's head."""

    lr_d: Annotated[Float, Field(gt=0.0, le=1e4)] = 2e-3
    lr_g: Annotated[Float, Field(gt=0.0, le=1e4)] = 1e-3
    lr_q: Annotated[Float, Field(gt=0.0, le=1e4)] = 2e-3
    lr_cr: Annotated[Float, Field(gt=0.0, le=1e4)] = 2e-3  # InfoGAN-CR's classifier
    beta1: Annotated[Float, Field(ge=0.0, le=0.999)] = 0.5
    beta2: Annotated[Float, Field(ge=0.0, le=0.99999)] = 0.999


class DataConfig(_Section):
    """Which dataset, and where its files are (MNIST-style datasets and the published dSprites file)."""

    name: Literal["dsprites", "digits", "mnist", "fashion_mnist"] = "dsprites"
    root: Path = "data"
    download: bool = False
    eval_size: Annotated[Int, Field(ge=16, le=1_000_000)] = 2000
    # dSprites only: "npz" uses DeepMind's published file under data.root
    # (dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, put there by the user: nothing is
    # downloaded) instead of the procedural renderer.
    dsprites_source: Literal["procedural", "npz"] = "procedural"

    @model_validator(mode="after")
    def _source_needs_dsprites(self) -> DataConfig:
        # Refused rather than ignored: a sweep row saying "npz" must have trained on the file.
        if self.dsprites_source != "procedural" and self.name != "dsprites":
            raise ValueError(
                f"invalid config value data.dsprites_source={self.dsprites_source!r} with "
                f"data.name={self.name!r}: allowed is 'procedural' (the default) unless data.name='dsprites'"
            )
        return self


class TrainConfig(_Section):
    """The loop: budget, batch, seed, device, precision and intervals."""

    steps: Annotated[Int, Field(ge=1, le=10_000_000)] = 2000
    batch_size: Annotated[Int, Field(ge=2, le=65536)] = 64
    g_steps: Annotated[Int, Field(ge=1, le=16)] = 2  # G updates per D update (InfoGAN-CR: 2)
    # The latent batch of a G update: the D step's own (shared; InfoGAN-CR) or a new draw for every
    # G update (fresh; openai/InfoGAN samples its latent inside each update's graph).
    g_latent: Literal["shared", "fresh"] = "shared"
    seed: Annotated[Int, Field(ge=0, le=2**31 - 1)] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # fp32 unless asked: the published numbers are fp32, and autocast was never validated for these
    # recipes (on an H200 bf16 bought no speed: 29.3 vs 30.5 steps/s). auto = bf16 on GPUs with it.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    # How a step runs: eager PyTorch; compiled (torch.compile of the step's compute; CUDA graphs
    # per compiled function on a GPU); graph (CUDA only: the whole iteration, sampling included,
    # one CUDA graph replay); auto = what was measured fastest on the device kind (infogan.speeds).
    step_mode: Literal["auto", "eager", "compiled", "graph"] = "auto"
    # fp32 matmuls and convolutions on CUDA in TensorFloat-32 (a 10-bit mantissa on tensor cores):
    # the MNIST recipe's fully connected layers are matmuls that full fp32 runs several times
    # slower on a GPU (torch's own default is TF32 for convolutions only). No effect on CPUs.
    tf32: bool = True
    eval_every: Annotated[Int, Field(ge=1, le=10_000_000)] = 500
    # linear: evaluate every eval_every steps; log: at eval_every x 1, 2, 4, 8, ... (a long run's
    # curve on a log axis, e.g. the published 322k-step protocol). Both also at the last step and,
    # with InfoGAN-CR, at loss.cr_start (the full suite: the plain-InfoGAN end of the run).
    eval_schedule: Literal["linear", "log"] = "linear"
    checkpoint_every: Annotated[Int, Field(ge=1, le=10_000_000)] = 500
    log_every: Annotated[Int, Field(ge=1, le=10_000_000)] = 50
    threads: Annotated[Int, Field(ge=0, le=1024)] = 0
    # A GAN whose losses reach this size has blown up long before they overflow to inf.
    max_loss: Annotated[Float, Field(gt=0.0, le=1e30)] = 1e6

    @property
    def images_per_step(self) -> int:
        """Training work of one step in images: a batch for the D update and one for each G update.

        A scheduler's clock (``train/images``): a recipe with two G steps per D step does 1.5x the
        work of one with one, and is compared at equal work, not at equal steps. (InfoGAN-CR's
        pairs are not counted: its CR phase is a short tail of a run.)
        """
        return self.batch_size * (1 + self.g_steps)


class EvalConfig(_Section):
    """Evaluation suite: which metrics when, their sample sizes (standard = disentanglement_lib's), FID.

    Staged evaluation: evaluations before a run's last step compute only the ``intermediate``
    families (what a scheduler and the curves need), with MIG on at most ``intermediate_points``
    points and FID on ``intermediate_fid_samples`` images; the last step computes the ``final``
    families at the full sizes. These two sets are the one way to say which metrics run (the
    ground-truth families only where the dataset has factors, ``categorical`` only with a
    categorical code): ``eval.final=categorical,mig`` leaves FID out, ``none`` computes nothing.
    """

    intermediate: MetricSet = "categorical,mig,fid"
    final: MetricSet = "all"
    intermediate_points: Annotated[Int, Field(ge=100, le=10_000_000)] = 10_000
    intermediate_fid_samples: Annotated[Int, Field(ge=16, le=10_000_000)] = 1_000
    # DCI's per-factor importance model: a random forest (fast, the default) or scikit-learn's
    # GradientBoostingClassifier as disentanglement_lib uses (slow; for published comparisons).
    dci_model: Literal["forest", "gradient_boosting"] = "forest"
    num_points: Annotated[Int, Field(ge=100, le=10_000_000)] = 10_000  # MIG/DCI/SAP/modularity training points
    mig_points: Annotated[Int, Field(ge=0, le=10_000_000)] = 0  # MIG's own sample size; 0 = num_points
    num_test: Annotated[Int, Field(ge=50, le=10_000_000)] = 5_000  # DCI/SAP/explicitness held-out points
    num_votes_train: Annotated[Int, Field(ge=10, le=10_000_000)] = 10_000  # FactorVAE / BetaVAE
    num_votes_eval: Annotated[Int, Field(ge=10, le=10_000_000)] = 5_000
    vote_batch: Annotated[Int, Field(ge=2, le=4096)] = 64
    fid_samples: Annotated[Int, Field(ge=16, le=10_000_000)] = 10_000
    fid_net_steps: Annotated[Int, Field(ge=1, le=1_000_000)] = 400  # training steps of the FID feature net
    feature_net: Literal["lenet", "inception"] = "lenet"
    inception_weights: Annotated[Annotated[str, Field(min_length=1)] | None, BeforeValidator(_optional_path),
                                 Field(json_schema_extra={"allowed": "a non-empty path or none"})] = None
    cache_dir: Path = "~/.cache/infogan-sweeps"

    @model_validator(mode="after")
    def _inception_needs_weights(self) -> EvalConfig:
        # Inception weights are never downloaded: without a local file the run would only
        # fail at its first evaluation, after training for eval_every steps.
        fid = "fid" in metric_set(self.final) | metric_set(self.intermediate)
        if fid and self.feature_net == "inception" and self.inception_weights is None:
            raise ValueError(
                "invalid config value eval.inception_weights=None with eval.feature_net='inception' "
                "and 'fid' in eval.final or eval.intermediate: allowed is the path of a local Inception-v3 "
                "weights file (torch-fidelity's 'weights-inception-2015-12-05-6726825d.pth'; nothing is "
                "downloaded), or use eval.feature_net='lenet' or leave 'fid' out of both metric sets"
            )
        return self


_SECTIONS: dict[str, type[_Section]] = {
    "codes": CodesConfig, "model": ModelConfig, "loss": LossConfig, "optim": OptimConfig,
    "data": DataConfig, "train": TrainConfig, "eval": EvalConfig,
}


# --------------------------------------------------------------------------------------------
# What a field allows, in words (from its declaration), and the one error message format


def _allowed(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    annotation = info.annotation
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(c) for c in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is str:
        return "a non-empty path"
    lo = next((m.ge for m in info.metadata if isinstance(m, at.Ge)), None)
    gt = next((m.gt for m in info.metadata if isinstance(m, at.Gt)), None)
    hi = next((m.le for m in info.metadata if isinstance(m, at.Le)), None)
    if annotation is int:
        return f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    low = f"> {gt}" if gt is not None else f">= {lo}"
    return f"a finite number {low}" + ("" if hi is None else f" and <= {hi}")


def _field(key: str) -> FieldInfo:
    section, _, name = key.partition(".")
    return _SECTIONS[section].model_fields[name]


def _section(name: str, values: Mapping[str, Any]) -> _Section:
    """Build one section, turning pydantic's errors into the project's one-line message."""
    try:
        return _SECTIONS[name](**values)
    except ValidationError as err:
        first = err.errors()[0]
        if first["loc"]:  # a field's own value (or an item of it: the whole value is named)
            field_name = first["loc"][0]
            key = f"{name}.{field_name}"
            value = values.get(field_name, first["input"])
            raise ValueError(f"invalid config value {key}={value!r}: allowed is {_allowed(_field(key))}") from None
        context = first.get("ctx", {}).get("error")  # a cross-field check: its own message
        raise ValueError(str(context) if context is not None else first["msg"]) from None


class Config(BaseModel):
    """The whole experiment: one section per concern. ``Config()`` is the embedded default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codes: CodesConfig = Field(default_factory=CodesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    def to_flat(self) -> dict[str, Any]:
        """Dotted flat dict, e.g. ``{"loss.lambda_cont": 0.05, "codes.categorical": "10,3", ...}``:
        every value in its flat form (``flat_value``: code tuples as their text)."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            for field_name, value in getattr(self, name).model_dump().items():
                out[f"{name}.{field_name}"] = value_text(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], base: Config | None = None) -> Config:
        """Build a config from dotted keys on top of ``base`` (default: ``Config()``).

        Values may be typed or strings (CLI, MLflow); unknown keys raise ``ValueError`` naming
        the closest keys; a bad value one naming the key, the value and what is allowed.
        """
        base = base or cls()
        updates: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, raw in flat.items():
            section_name, _, field_name = key.partition(".")
            if section_name not in _SECTIONS or field_name not in _SECTIONS[section_name].model_fields:
                raise ValueError(unknown_key_message(key))
            updates[section_name][field_name] = raw
        sections = {name: _section(name, {**getattr(base, name).model_dump(), **updates[name]}) if updates[name]
                    else getattr(base, name) for name in _SECTIONS}
        return cls(**sections)

    def replace(self, **flat: Any) -> Config:
        """Convenience: ``cfg.replace(**{"train.steps": 10})``."""
        return Config.from_flat(flat, base=self)


# Keys older runs saved that are no longer config keys, and how a saved value is read today.
#   eval.fid, eval.disentanglement: switches that took FID / the ground-truth families out of
#   eval.intermediate and eval.final, which now say it alone.
RETIRED_KEYS = ("eval.fid", "eval.disentanglement")
_RETIRED_FAMILIES = {"eval.fid": frozenset({"fid"}), "eval.disentanglement": GROUND_TRUTH_FAMILIES}


def upgrade_saved(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A flat config saved by an older version (a checkpoint's), in today's keys: a retired switch
    that was off takes its families out of ``eval.intermediate`` and ``eval.final``; one that was
    on changes nothing. Keys that are neither current nor retired stay, for ``from_flat`` to refuse.
    """
    out = {k: v for k, v in flat.items() if k not in RETIRED_KEYS}
    off = frozenset().union(*(families for key, families in _RETIRED_FAMILIES.items()
                              if key in flat and str(flat[key]).strip().lower() in ("false", "0")))
    if off:
        for key in ("eval.intermediate", "eval.final"):
            default = getattr(EvalConfig(), key.partition(".")[2])
            kept = [f for f in METRIC_FAMILIES if f in metric_set(str(out.get(key, default))) - off]
            out[key] = ",".join(kept) or "none"
    return out


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
    tuples are their comma-joined text, ``"10,3"``; optional paths and choices are text)."""
    value = Config().to_flat()[key] if key in KEYS else None
    annotation = _field(key).annotation
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if annotation is bool:
        return "bool"
    if annotation is int or (get_origin(annotation) is Literal and isinstance(value, int)):
        return "int"
    if annotation is float:
        return "float"
    return "string"


# ---- The one codec of config values. Inside ``Config`` a value has its declared type (a code
# layout is a tuple of ints); outside it (CLI, Optuna, Tune, MLflow params, JSON, Parquet) it has
# one flat form: the typed scalar, a code layout as its text ("10,3"). ``coerce_value`` reads
# either form, ``flat_value`` writes the flat one, ``value_text`` writes text.


def value_text(value: Any) -> str:
    """The text of a config value: a code layout comma-joined (``"10,3"``; ``""`` when empty),
    anything else ``str``. MLflow params and ``--set`` read it back through ``coerce_value``."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def flat_value(key: str, raw: Any) -> Any:
    """One key's value in the flat form, from text or a typed value, checked against the key's
    declaration (``coerce_value``): what a search space, Optuna, Tune and the tables carry.

    Raises:
        ValueError: an unknown key, or a value that does not parse or is not allowed.
    """
    value = coerce_value(key, raw)
    return value_text(value) if isinstance(value, tuple) else value


def coerce_value(key: str, raw: Any) -> Any:
    """One key's value from text or a typed value, checked against the key's declaration alone
    (no cross-field checks): the fast path for reading many records back.

    Raises:
        ValueError: an unknown key, or a value that does not parse or is not allowed.
    """
    if key not in KEYS:
        raise ValueError(unknown_key_message(key))
    section, _, name = key.partition(".")
    try:
        return _VALUE_ADAPTERS[key].validate_python(raw)
    except ValidationError:
        raise ValueError(f"invalid config value {key}={raw!r}: allowed is {_allowed(_field(key))}") from None


def describe(key: str) -> str:
    """What values a dotted key allows, for ``--help`` texts."""
    return _allowed(_field(key))


KEYS: tuple[str, ...] = tuple(Config().to_flat())


def _adapter(key: str) -> Any:
    from pydantic import TypeAdapter

    info = _field(key)
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False))


_VALUE_ADAPTERS = {key: _adapter(key) for key in KEYS}

# What changing a key does to an experiment, written once: the resume check (infogan.train) and
# the analysis's config identity (sweeps.record.config_id) both read it.
#   seed        the training seed: same experiment, another draw
#   machine     where it runs, no effect on a number (threads, data folder, download)
#   numerics    how it computes: same experiment, other rounding (device, precision)
#   speed       how fast it computes: the same computation fused or captured, rounding aside; a
#               run may resume on another path (train.step_mode)
#   bookkeeping when it logs, checkpoints and evaluates
#   budget      how long it trains
#   evaluation  what is measured and how (eval.*, the labelled evaluation set's size)
#   model       everything else: the networks, codes, losses, optimiser, data
_ROLES = {
    "train.seed": "seed",
    "train.threads": "machine", "data.root": "machine", "data.download": "machine",
    "train.device": "numerics", "train.precision": "numerics", "train.tf32": "numerics", "train.step_mode": "speed",
    "train.eval_every": "bookkeeping", "train.eval_schedule": "bookkeeping", "train.checkpoint_every": "bookkeeping",
    "train.log_every": "bookkeeping",
    "train.steps": "budget",
    "data.eval_size": "evaluation",
}


def key_role(key: str) -> str:
    """The role of a dotted config key (see ``_ROLES``)."""
    if key.startswith("eval."):
        return "evaluation"
    return _ROLES.get(key, "model")


# Keys two runs may differ in and still be "the same config" (seed spread groups them).
NON_SEMANTIC_KEYS = frozenset(k for k in KEYS if key_role(k) in ("seed", "machine", "numerics", "speed", "bookkeeping"))
# Keys a resumed run may change: they do not alter the trajectory so far.
RESUMABLE_KEYS = frozenset(k for k in KEYS if key_role(k) in ("machine", "speed", "bookkeeping", "budget", "evaluation"))

# InfoGAN-CR's switch: its classifier is created when the CR phase starts, so until then these keys
# change nothing, and a resume may switch CR on (the published protocol: 288k plain InfoGAN steps,
# then CR with a fresh classifier) or move its start, as long as no CR step has run.
CR_KEYS = frozenset({"loss.lambda_cr", "loss.cr_start", "optim.lr_cr"})


def cr_active(flat: Mapping[str, Any], step: int) -> bool:
    """Whether iteration ``step`` (1-based) of a run with the flat config ``flat`` has a CR step."""
    return float(flat.get("loss.lambda_cr", 0.0)) > 0 and step > int(flat.get("loss.cr_start", 0))


def resume_conflicts(saved: Mapping[str, Any], current: Mapping[str, Any], step: int) -> list[str]:
    """The keys whose change would alter the trajectory of a run resumed at ``step``: every
    non-resumable key that differs, except InfoGAN-CR's keys while neither config has had a CR step.

    Args:
        saved: the checkpoint's flat config (keys it lacks count as unchanged).
        current: the resumed run's flat config.
        step: the checkpoint's step.
    """
    def same(key: str) -> bool:  # a checkpoint written before code layouts were text holds a list
        old, new = saved.get(key, current[key]), current[key]
        return old == new or (isinstance(old, list) and value_text(old) == new)

    changed = [k for k in current if k not in RESUMABLE_KEYS and not same(k)]
    if not (cr_active(saved, step) or cr_active(current, step)):
        changed = [k for k in changed if k not in CR_KEYS]
    return sorted(changed)
