"""The training library stays usable without Ray, Optuna or MLflow in the process."""

from __future__ import annotations

import subprocess
import sys


def test_infogan_imports_no_sweep_stack() -> None:
    code = (
        "import sys, infogan, infogan.train, infogan.metrics.suite, infogan.data.dsprites, "
        "infogan.data.mnist, infogan.data.digits, infogan.figures\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna', 'mlflow'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_metric_names_load_nothing_but_the_standard_library() -> None:
    # sweeps.record (read by the analysis without torch) takes train/ metric names from it.
    code = ("import sys, infogan.metric_names\n"
            "print(','.join(m for m in ('torch', 'numpy', 'pydantic', 'infogan.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
