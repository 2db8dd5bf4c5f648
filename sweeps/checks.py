"""Pre-flight checks of a sweep, before Ray starts or any record exists: the settings against
the search space (``check_sweep``: objectives the trials report, ASHA's clock, seeds, ensembles, grids), and
against the cluster and tracking store (an address nothing answers on, a trial the cluster can
never place, a machine-local store on a cluster of several machines)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from urllib.parse import urlparse

from infogan.loop import reported_metrics
from sweeps.settings import SweepSettings
from sweeps.spaces import SearchSpace


class SweepCheckError(ValueError):
    """Settings and space that cannot make a sweep (one line naming what to change)."""


def check_sweep(settings: SweepSettings, space: SearchSpace) -> None:
    """Check that the settings and the (validated) space make a sweep that can run and answer.

    ``run_sweep`` calls it first, so a sweep started from Python is held to what the CLI is.

    Raises:
        SweepCheckError: naming the flag or key and what to do instead.
    """
    if settings.num_samples < 1 or settings.max_concurrent < 1 or settings.seeds < 1:
        raise SweepCheckError("--num-samples, --max-concurrent and --seeds must be >= 1")
    sample = space.sample_config()
    reported = reported_metrics(sample)
    for metric in settings.metrics:
        if metric not in reported:
            flag = "--multi-objective" if settings.multi_objective else "--metric"
            close = difflib.get_close_matches(metric, sorted(reported), n=1)
            evals = [m for m in sorted(reported) if m.startswith("eval/")]
            train = [m.removeprefix("train/") for m in sorted(reported) if m.startswith("train/")]
            raise SweepCheckError(
                f"{flag} {metric}: not reported by every evaluation of this sweep's trials"
                + (f" (did you mean {close[0]}?)" if close else "")
                + f"; choose {', '.join(evals)} or train/{{{','.join(train)}}} (eval.intermediate sets the rest)")
    tc = sample.train
    if tc.eval_every % tc.checkpoint_every:
        # Tune receives a checkpoint only with a report (one per evaluation): checkpoints written
        # between reports would never reach Tune, and a retried trial would restart further back.
        raise SweepCheckError(f"train.eval_every={tc.eval_every} must be a multiple of "
                              f"train.checkpoint_every={tc.checkpoint_every} in a sweep")
    asha = settings.scheduler == "asha"
    clocked = [k for k in ("train.steps", "train.eval_every", "train.eval_schedule") if k in space.params]
    if asha and clocked:
        # ASHA's rungs and max_t are placed from one budget and one report interval.
        raise SweepCheckError(f"searching {' and '.join(clocked)} would put ASHA's rungs off some trials' report "
                              "steps: fix it with --set, or use --scheduler fifo")
    if asha and tc.eval_schedule == "log":
        raise SweepCheckError("train.eval_schedule=log reports at 1, 2, 4, ... x train.eval_every steps, but ASHA's "
                              "rungs sit on regular report steps: use --scheduler fifo, or the linear schedule")
    if asha and settings.multi_objective:
        raise SweepCheckError("ASHA ranks trials by one metric: use --scheduler fifo with --multi-objective")
    if settings.seeds > 1 and settings.multi_objective:
        raise SweepCheckError("--seeds averages one objective over seeds for the searcher: not with --multi-objective")
    if settings.seeds > 1 and asha:
        raise SweepCheckError("--seeds with ASHA would cut some seeds of a config and not others: use --scheduler fifo")
    if settings.ensemble > 1:
        from infogan.step import MEMBER_KEYS, may_differ

        shaped = [k for k in space.params if not may_differ(k)]
        if shaped:
            raise SweepCheckError(
                f"--ensemble {settings.ensemble} trains trials together, but this sweep searches {', '.join(shaped)}, "
                f"which would change the networks' shapes or the step between them: fix it with --set, or search "
                f"only {', '.join(MEMBER_KEYS)}")
        cr = space.params.get("loss.lambda_cr")
        if cr is not None and (min(cr.choices) == 0 < max(cr.choices) if cr.choices is not None
                               else cr.low <= 0 < cr.high):
            # InfoGAN-CR adds a classifier and a step: on in some members and off in others is
            # two step structures (infogan.step.check_members would fail those trials).
            raise SweepCheckError(
                f"--ensemble {settings.ensemble} trains trials together, but the searched loss.lambda_cr includes 0 "
                "and positive values, so InfoGAN-CR would be on in some members only: search it over positive "
                "values, or over 0 without --ensemble")
        if sample.train.precision == "fp16":
            raise SweepCheckError(f"--ensemble {settings.ensemble} with train.precision=fp16: fp16's loss scaler "
                                  "would skip a step for every member when one overflows; use fp32 or bf16")
    if settings.search == "grid":
        not_choices = [k for k, p in space.params.items() if p.choices is None]
        if not space.params or not_choices:
            raise SweepCheckError("--search grid needs every searched key given as choices (--range KEY=a,b,c); "
                                  f"ranges: {', '.join(not_choices) or 'none searched'}")

ADDRESS_TIMEOUT_S = 15.0  # how long joining a cluster may take before it is an error


def check_address(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """Fail fast when ``--address`` names a host:port nothing answers on (Ray would retry for minutes).

    Raises:
        ValueError: naming the address and what was tried.
    """
    import socket

    if not address or address in ("auto", "local"):
        return
    target = address.removeprefix("ray://").rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address!r}: expected 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ValueError(f"--address {address}: no Ray cluster answers at {host}:{port} within {timeout:g} s ({err}); "
                         "start it (ray start --head / ray up cluster.yaml) or fix the address") from None


def unplaceable(settings: SweepSettings, resources: Mapping[str, float]) -> str | None:
    """Why no trial could ever be placed on the cluster as it is, or None.

    Args:
        settings: the sweep's per-trial request.
        resources: ``ray.cluster_resources()``.
    """
    have_cpu, have_gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if settings.gpus_per_trial > have_gpu:
        return (f"a trial asks for {settings.gpus_per_trial:g} GPU but the cluster has {have_gpu:g}: it would wait "
                "forever. Use --gpus-per-trial 0 on CPUs, or pass --wait-for-resources if GPU nodes join on demand")
    if settings.cpus_per_trial > have_cpu:
        return (f"a trial asks for {settings.cpus_per_trial:g} CPUs but the cluster has {have_cpu:g}: lower "
                "--cpus-per-trial, or pass --wait-for-resources if nodes join on demand")
    return None


def local_store_on_cluster(tracking_uri: str, hosts: set[str], joined: bool) -> str | None:
    """Why a machine-local MLflow store would split this sweep's records, or None if it would not.

    Trials log from the node they run on: a ``sqlite:`` or ``file:`` store on a cluster whose
    nodes are different machines gives each machine its own store (and the driver sees none of
    their runs). Nodes that share one machine share its disk, so a local store is fine there.

    Args:
        tracking_uri: the resolved tracking URI.
        hosts: the addresses of the cluster's live nodes.
        joined: whether the driver joined an existing cluster (``--address`` / ``RAY_ADDRESS``),
            which may add machines later (autoscaling).
    Returns:
        The problem in one sentence, or None.
    """
    if urlparse(tracking_uri).scheme not in ("sqlite", "file"):
        return None
    if len(hosts) > 1:
        return (f"the tracking store {tracking_uri} is a file on this machine, but the cluster's nodes run on "
                f"{len(hosts)} machines ({', '.join(sorted(hosts))}): each would log to its own copy. Pass "
                "--tracking-uri http://<head>:5000 (an `mlflow server`, as cluster.yaml starts on the head)")
    if joined:
        return (f"the tracking store {tracking_uri} is a file on this machine: trials on worker machines that "
                "join later (autoscaling) would log to their own copy; use --tracking-uri http://<head>:5000 on clusters")
    return None
