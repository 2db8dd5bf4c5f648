"""How many trials of a sweep train as the members of one step (``--ensemble``).

``--ensemble K`` packs K trials into each worker; ``--ensemble auto`` (the default) packs where
packing was measured faster on the kind of device the trials run on (``infogan.speeds``), and
nowhere else: on CPUs the stacked step was measured slower than one member at a time, and no GPU
measurement exists yet, so today ``auto`` is one trial per worker. With ``--seeds N`` a packed
sweep puts a config's N seeds (consecutive trials of Tune's ``Repeater``) in one worker.
"""

from __future__ import annotations

from infogan import speeds
from infogan.config import Config
from infogan.step import may_differ

MOST = 32  # members of one step ``auto`` considers (the largest K a GPU measurement is planned for)


def trial_device_kind(gpus_per_trial: float) -> str:
    """The kind of device a trial trains on, as ``speeds.device_kind`` names it: this machine's CPU
    or GPU (a cluster's workers are taken to be of the driver's kind), or ``"cuda"`` for GPUs this
    driver cannot see (nothing is measured for it)."""
    import torch

    if gpus_per_trial <= 0:
        return speeds.device_kind(torch.device("cpu"))
    return speeds.device_kind(torch.device("cuda", 0)) if torch.cuda.is_available() else "cuda"


def parse_ensemble(text: str) -> int | str:
    """``--ensemble``'s value: ``auto`` or a number of members >= 1.

    Raises:
        ValueError: anything else (one line).
    """
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--ensemble {text}: allowed is auto or a number of trials per worker >= 1")
    return value


def resolve_ensemble(choice: int | str, cfg: Config, searched: list[str], seeds: int, gpus_per_trial: float) -> int:
    """The members per worker: ``choice`` when a number; for ``auto``, what was measured fastest for
    ``cfg``'s model on the trials' device kind (at most ``seeds`` with ``--seeds``), and 1 where
    trials cannot share a step (a searched key changes the networks' shapes or the step, or fp16).

    Args:
        choice: ``--ensemble``.
        cfg: a config of the sweep (its shapes; the searched keys vary around it).
        searched: the keys the sweep searches.
        seeds: ``--seeds``.
        gpus_per_trial: ``--gpus-per-trial``.
    """
    if choice != "auto":
        return int(choice)
    if any(not may_differ(k) or k == "loss.lambda_cr" for k in searched) or cfg.train.precision == "fp16":
        return 1
    most = seeds if seeds > 1 else MOST
    return speeds.members_to_pack(trial_device_kind(gpus_per_trial), cfg, most)
