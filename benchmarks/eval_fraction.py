"""Kept for old commands: the evaluation-fraction measurement now lives in benchmarks/metrics_cost.py.

Runs only its part 2 (a trained trial's full evaluation as a fraction of its training time);
every option of ``metrics_cost.py`` is accepted.

    python benchmarks/eval_fraction.py                          # dsprites-quick preset
    python benchmarks/eval_fraction.py --preset dsprites --skip-standard
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_cost import main as metrics_cost_main  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """``metrics_cost.py --skip-metrics`` with the given options."""
    metrics_cost_main(["--skip-metrics", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
