"""The lambda search: Optuna (TPE) inside Ray Tune with ASHA, tracked in MLflow.

``python sweeps/lambda_search.py`` searches the InfoGAN's lambdas, code sizes and learning rates on
procedural dSprites with a CPU-sized budget (local Ray, local MLflow store) and prints where to
look. The same command runs on a Ray cluster (``--address auto --storage-path <shared>``), resumes
an interrupted sweep (``--resume``), and runs CI's two tiny trials (``--smoke-test``).

This file is the script and the import name the README and the tests use; the sweep itself is
split along its seams: ``sweeps.cli`` (flags -> settings), ``sweeps.settings``, ``sweeps.checks``
(pre-flight), ``sweeps.samplers`` (the Optuna sampler), ``sweeps.tuner`` (searcher, scheduler,
Tuner, statuses), ``sweeps.summary`` (the answer on the parent run and in the closing table).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable as a script (``python sweeps/lambda_search.py``): the script's own directory is put on
# sys.path first, which would let sweeps/*.py shadow top-level modules; the package is imported by
# its full name, so drop that entry.
if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sweeps.checks import ADDRESS_TIMEOUT_S, check_address, local_store_on_cluster, unplaceable  # noqa: E402
from sweeps.cli import build_parser, main, settings_from_args  # noqa: E402
from sweeps.samplers import make_sampler, sampler_options, startup_trials  # noqa: E402
from sweeps.settings import (  # noqa: E402
    DEFAULT_METRIC,
    DEFAULT_METRICS,
    DEFAULT_MODE,
    DEFAULT_MULTI_OBJECTIVE,
    EXIT_INTERRUPTED,
    SweepSettings,
)
from sweeps.tuner import (  # noqa: E402
    INTERRUPTED,
    NOT_STARTED,
    build_scheduler,
    build_searcher,
    kill_open_child_runs,
    read_storage_json,
    reconcile_statuses,
    resume_command,
    run_sweep,
    tune_trials,
    write_storage_json,
)

__all__ = [
    "ADDRESS_TIMEOUT_S", "DEFAULT_METRIC", "DEFAULT_METRICS", "DEFAULT_MODE", "DEFAULT_MULTI_OBJECTIVE",
    "EXIT_INTERRUPTED", "INTERRUPTED", "NOT_STARTED", "SweepSettings", "build_parser", "build_scheduler",
    "build_searcher", "check_address", "kill_open_child_runs", "local_store_on_cluster", "main", "make_sampler",
    "read_storage_json", "reconcile_statuses", "resume_command", "run_sweep", "sampler_options",
    "settings_from_args", "startup_trials", "tune_trials", "unplaceable", "write_storage_json",
]

if __name__ == "__main__":
    raise SystemExit(main())
