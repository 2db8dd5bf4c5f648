"""The names of the ``train/`` metrics a run reports, declared once.

``infogan.loop`` and ``infogan.monitor`` write these; ``infogan.loop.reported_metrics`` lists
them, and ``sweeps.record`` (the run record, which loads nothing but the standard library) takes
``IMAGES`` and ``DIVERGED_STEP`` from here. Standard library only: importing this module must
not pull in torch. The ``eval/`` names are declared, with their families and directions, in
``infogan.metric_catalogue``.
"""

from __future__ import annotations

PREFIX = "train/"

# The loss log's columns (``infogan.monitor.LossLog``): a history row's keys, reported as
# ``train/<name>``. The step's own loss vector is named by ``infogan.step.LOSS_NAMES``.
L_INFO_CAT = "l_info_cat"  # L_I = H(c) - NLL of the categorical codes, nats
L_INFO_CONT = "l_info_cont"  # the same for the continuous codes (H(c) a differential entropy)
LOSS_LOG_COLUMNS = (L_INFO_CAT, L_INFO_CONT)  # beside the step's losses

IMAGES = PREFIX + "images"
"""Training work up to a step, in images: ``step * TrainConfig.images_per_step``, i.e. every real
and generated image of each D update and each of the ``train.g_steps`` G updates (InfoGAN-CR's
pairs not counted). A scheduler's clock (ASHA in sweeps). Not the rate ``images_per_second``
(``infogan.loop.TrainResult``; ``time/images_per_second`` in a sweep), which counts real images
only: a factor ``1 + train.g_steps`` smaller per step."""

H_CAT = PREFIX + "h_cat"  # the categorical codes' prior entropy, sum of ln K (nats): L_I's bound
H_CONT = PREFIX + "h_cont"  # the continuous codes' prior differential entropy, n * ln 2 (nats)
DIVERGED_STEP = PREFIX + "diverged_step"  # the first step whose loss or weights blew up; only on divergence


def train_metric(name: str) -> str:
    """``loss_d`` -> ``train/loss_d``: a loss-log column as a reported metric."""
    return PREFIX + name
