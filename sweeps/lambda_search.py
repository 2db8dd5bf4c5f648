"""The lambda search: Optuna (TPE) inside Ray Tune with ASHA, tracked in MLflow.

``python sweeps/lambda_search.py`` searches the InfoGAN's lambdas, code sizes and learning rates on
procedural dSprites with a CPU-sized budget (local Ray, local MLflow store) and prints where to
look. The same command runs on a Ray cluster (``--address auto --storage-path <shared>``), resumes
an interrupted sweep (``--resume``), and runs CI's two tiny trials (``--smoke-test``).

This file is only the script (its ``main`` is ``sweeps.cli.main``); the sweep itself is split along
its seams, and each name is imported from the module that owns it: ``sweeps.cli`` (flags ->
settings), ``sweeps.settings``, ``sweeps.checks`` (pre-flight), ``sweeps.samplers`` (the Optuna
sampler), ``sweeps.tuner`` (searcher, scheduler, Tuner, statuses), ``sweeps.ranking`` (which trials
are best), ``sweeps.summary`` (the answer on the parent run and in the closing table).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable as a script (``python sweeps/lambda_search.py``): the script's own directory is put on
# sys.path first, which would let sweeps/*.py shadow top-level modules; the package is imported by
# its full name, so drop that entry.
if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sweeps.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
