"""Every trained model's codes on the same real images: ModelCentrality's input.

Owns ``collect_codes`` (the ``python -m analysis codes`` step): for each trial of a collected
sweep whose MLflow child run holds ``checkpoint/checkpoint.pt`` (finished trials upload it), download
the checkpoint, rebuild the discriminator/Q from the checkpoint's own flat config, apply Q to the
same fixed real images (``dataset.eval_set(n, EVAL_SEED)``, the evaluation's fixed seed) and keep
the ``(N, D)`` representation the evaluation metrics see (continuous posterior means, then
categorical argmaxes; ``infogan.metrics.suite.codes_of``). The codes go to
``<tables>/<sweep>/codes.npz``, one array per trial id, written atomically.

Trials without a checkpoint are skipped and listed with the reason. Trials that differ in dataset,
image size or channels are refused: their codes would not describe the same images.
Torch, MLflow and ``infogan`` are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from analysis import schema as S
from infogan.atomic import atomic_path
from sweeps import record

DATA_KEYS = ("data.name", "model.image_size", "model.channels")  # what makes "the same images"
CHECKPOINT_ARTIFACT = record.ARTIFACTS["artifact/checkpoint"]  # checkpoint/checkpoint.pt


@dataclass
class CodesResult:
    """Codes per trial id, the trials left out (id → reason), and where the file went."""

    codes: dict[str, np.ndarray]
    skipped: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def check_same_data(trials: pd.DataFrame, keys: tuple[str, ...] = DATA_KEYS) -> None:
    """Refuse trials that were trained on different images.

    Args:
        trials: the trials whose codes would be compared (config columns as in trials.parquet).
        keys: the config columns that must agree.

    Raises:
        ValueError: naming each key with several values and which trials have which.
    """
    problems = []
    for key in keys:
        if key not in trials.columns:
            continue
        values = trials[key].astype("string").fillna("<missing>")
        if values.nunique() > 1:
            groups = ", ".join(
                f"{v} [{', '.join(sorted(trials.loc[values == v, 'trial_id'].astype(str)))}]"
                for v in sorted(values.unique())
            )
            problems.append(f"{key}: {groups}")
    if problems:
        raise ValueError(
            "refusing to compare codes of models trained on different images: "
            + "; ".join(problems)
            + ". ModelCentrality needs every model's codes on the same real images; "
            "collect codes for one dataset/image size at a time"
        )


def write_codes(codes: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Write ``{trial id: (N, D) array}`` to an ``.npz`` atomically (temp file + rename).

    Args:
        codes: arrays by trial id.
        path: destination file.

    Returns:
        The destination path.
    """
    with atomic_path(path) as tmp:
        np.savez(tmp, **{k: codes[k] for k in sorted(codes)})
    return Path(path)


def _has_checkpoint(client: Any, run_id: str) -> bool:
    folder = CHECKPOINT_ARTIFACT.rpartition("/")[0]
    return any(a.path == CHECKPOINT_ARTIFACT for a in client.list_artifacts(run_id, folder))


def _run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def _skip_reason(row: pd.Series, client: Any) -> str | None:
    """Why a trial has no usable checkpoint, or None if it has one."""
    if pd.isna(row.get("run_id")):
        return "no MLflow run (known only from Tune's folder)"
    if not _has_checkpoint(client, row["run_id"]):
        return (f"no {CHECKPOINT_ARTIFACT} artifact in run {row['run_id']} (status {row['status']}; "
                "only finished trials upload their checkpoint)")
    return None


def model_codes(cfg: Any, discriminator_state: Mapping[str, Any], images: Any) -> np.ndarray:
    """Q's representation of ``images`` under one trained discriminator.

    Args:
        cfg: the run's ``infogan.config.Config`` (rebuilds the same architecture).
        discriminator_state: ``TrainingState.discriminator`` of its checkpoint.
        images: (N, C, H, W) real images in [-1, 1] on the CPU.

    Returns:
        (N, D) float32 codes: continuous posterior means, then categorical argmaxes.
    """
    from infogan.metrics.suite import codes_of, inference_model
    from infogan.model import build

    _, d = build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned")
    d.load_state_dict(discriminator_state)
    return codes_of(inference_model(d))(images).astype(np.float32)  # (N, n_continuous + n_categorical)


def collect_codes(
    tracking_uri: str | None,
    tables: str | os.PathLike[str],
    sweep: str,
    *,
    n_images: int = 1000,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> CodesResult:
    """Codes of every checkpointed trial of a collected sweep on the same real images.

    Args:
        tracking_uri: MLflow tracking URI; None resolves it as the sweep does
            (``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
        tables: folder that ``analysis collect`` wrote (holds ``<sweep>/trials.parquet``).
        sweep: sweep name.
        n_images: real images N (the dataset's fixed evaluation draw, ``EVAL_SEED``).
        out: destination ``.npz``; default ``<tables>/<sweep>/codes.npz``.
        progress: show a tqdm bar over trials.

    Returns:
        ``CodesResult``; ``codes[trial_id]`` is (N, D) float32 (D differs between code layouts).

    Raises:
        FileNotFoundError: the sweep was not collected under ``tables``.
        ValueError: trials mix datasets / image sizes / channels, or no trial has a checkpoint.
    """
    from mlflow import MlflowClient

    from analysis.sources import check_readable_store
    from sweeps.tracking import resolve_tracking_uri

    folder = S.sweep_dir(tables, sweep)
    trials_file = folder / S.TRIALS_FILE
    if not trials_file.is_file():
        raise FileNotFoundError(f"no {trials_file}; run `python -m analysis collect --sweep {sweep} --out {tables}` first")
    trials = S.read_trials(trials_file).sort_values("trial_id", kind="mergesort").reset_index(drop=True)
    uri = resolve_tracking_uri(tracking_uri)
    check_readable_store(uri)  # a read-only command: never let MLflow create a store here
    client = MlflowClient(uri)
    run_ids = trials["run_id"].dropna()
    if len(run_ids) and not _run_exists(client, str(run_ids.iloc[0])):
        raise ValueError(f"none of sweep {sweep!r}'s runs is in the MLflow store {uri}; pass the store the sweep "
                         "logged to with --tracking-uri (the one given to `analysis collect`)")

    skipped: dict[str, str] = {}
    usable = []
    for _, row in trials.iterrows():
        reason = _skip_reason(row, client)
        if reason is None:
            usable.append(row)
        else:
            skipped[str(row["trial_id"])] = reason
    for tid, reason in skipped.items():
        print(f"skipping trial {tid}: {reason}")
    if not usable:
        raise ValueError(f"no trial of sweep {sweep!r} has a {CHECKPOINT_ARTIFACT} artifact; skipped: "
                         + "; ".join(f"{t}: {r}" for t, r in skipped.items()))
    check_same_data(pd.DataFrame(usable))  # from the table, before downloading anything

    from infogan import checkpoint as ckpt
    from infogan.config import Config
    from infogan.data import load_dataset
    from infogan.metrics.suite import EVAL_SEED

    codes: dict[str, np.ndarray] = {}
    images = None
    first: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="infogan-codes-") as tmp:
        for row in tqdm(usable, desc="codes", unit="trial", disable=not progress):
            tid = str(row["trial_id"])
            local = client.download_artifacts(str(row["run_id"]), CHECKPOINT_ARTIFACT, str(Path(tmp) / tid))
            state = ckpt.load(local)  # torch.load(weights_only=True)
            Path(local).unlink()  # at most one checkpoint on disk at a time
            cfg = Config.from_flat(state.config)
            data = {"data.name": cfg.data.name, "model.image_size": cfg.model.image_size,
                    "model.channels": cfg.model.channels}
            if images is None:
                # Every trial has the same data keys (checked above): the first one's dataset and
                # its fixed evaluation draw are the images every model is applied to.
                first = data
                images = load_dataset(cfg, "cpu").eval_set(n_images, EVAL_SEED)[0]  # (N, C, H, W)
            elif data != first:  # the table disagrees with the checkpoint (edited, or other records)
                raise ValueError(f"trial {tid}'s checkpoint was trained on {data}, the first trial's on {first}: "
                                 "refusing to compare codes of models trained on different images")
            codes[tid] = model_codes(cfg, state.discriminator, images)
    path = write_codes(codes, out if out is not None else folder / S.CODES_FILE)
    return CodesResult(codes, skipped, path)
