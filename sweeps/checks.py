"""Pre-flight checks of a sweep against its cluster and tracking store, before any record exists:
an address nothing answers on, a trial the cluster can never place, a machine-local store on a
cluster of several machines."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from sweeps.settings import SweepSettings

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
