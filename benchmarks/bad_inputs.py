"""Every bad input of issue 9, run as a new user would: the command, its exit code, the one line
it prints, whether a traceback appeared, and what it left behind in the working folder.

    python benchmarks/bad_inputs.py            # prints a Markdown table and the count

The cases of issue 9 also have tests (tests/test_cli.py, tests/sweeps/test_cli.py, tests/sweeps/test_faults.py,
tests/analysis/); this script is the table a person reads. Runs in a temporary folder, no GPU, about
three minutes on 2 cores (the sweep cases start a local Ray).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX encoding: magic 0x0000080<ndim>, big-endian dims, raw uint8 bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fixtures(work: Path, env: dict[str, str]) -> None:
    """A truncated IDX file, a truncated checkpoint, a tiny run to resume, an empty sqlite file."""
    rng = np.random.default_rng(0)
    raw = work / "data" / "MNIST" / "raw"
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    image_file = raw / "train-images-idx3-ubyte"
    image_file.write_bytes(image_file.read_bytes()[:1000])
    (work / "badckpt").mkdir()
    (work / "badckpt" / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    (work / "empty.db").write_bytes(b"")
    subprocess.run([PY, "-m", "infogan.train", *TINY, "--out", "tinyrun"], env=env, capture_output=True, check=True,
                   cwd=work)
    # A real (synthetic) sweep store, its tables, and a copy of them with a column dropped.
    uri = f"sqlite:///{work}/store/mlflow.db"
    (work / "store").mkdir()
    subprocess.run([PY, "-c", f"from analysis import synthetic; synthetic.log_synthetic_sweep({uri!r}, 's')"],
                   env=env, capture_output=True, check=True, cwd=work)
    subprocess.run([PY, "-m", "analysis", "collect", "--tracking-uri", uri, "--sweep", "s", "--out", "tables",
                    "--no-progress"], env=env, capture_output=True, check=True, cwd=work)
    trials = work / "tables" / "s" / "trials.parquet"
    subprocess.run([PY, "-c", f"import pyarrow.parquet as pq; t = pq.read_table({str(trials)!r}); "
                    f"pq.write_table(t.drop_columns(['status']), {str(trials)!r})"], env=env, check=True, cwd=work)
    (work / "a-file").write_text("a file where the output folder should be")


TINY = ["--set", "data.name=digits", "--set", "model.image_size=28", "--set", "model.width=0.125",
        "--set", "codes.noise_dim=4", "--set", "codes.categorical=[10]", "--set", "codes.n_continuous=2",
        "--set", "train.steps=2", "--set", "train.batch_size=8", "--set", "train.eval_every=2",
        "--set", "train.checkpoint_every=2", "--set", "data.eval_size=32", "--set", "eval.final=categorical",
        "--set", "train.device=cpu", "--no-progress"]


def cases(work: Path) -> list[tuple[str, list[str]]]:
    train, sweep, analysis = [PY, "-m", "infogan.train"], [PY, str(REPO / "sweeps" / "lambda_search.py")], \
        [PY, "-m", "analysis"]
    return [
        ("sweep --budget smoke --gpus-per-trial 0.5 (no GPU)", sweep + ["--budget", "smoke", "--gpus-per-trial", "0.5"]),
        ("sweep --smoke-test --address 127.0.0.1:1", sweep + ["--smoke-test", "--address", "127.0.0.1:1"]),
        ("sweep --num-samples 0", sweep + ["--num-samples", "0"]),
        ("sweep --max-concurrent 0", sweep + ["--max-concurrent", "0"]),
        ("sweep --gpus-per-trial -1", sweep + ["--gpus-per-trial", "-1"]),
        ("sweep --cpus-per-trial 0", sweep + ["--cpus-per-trial", "0"]),
        ("sweep --max-failures -5", sweep + ["--max-failures", "-5"]),
        ("sweep --set loss.lamda_cat=1 (typo)", sweep + ["--set", "loss.lamda_cat=1"]),
        ("sweep --num-sample 3 (a prefix of --num-samples)", sweep + ["--num-sample", "3"]),
        ("sweep --smoke-test --resume", sweep + ["--smoke-test", "--resume"]),
        ("sweep --resume of a sweep that does not exist", sweep + ["--resume", "--name", "nope", "--storage-path", "tune"]),
        ("train --train.precision fp16 on a CPU", train + TINY + ["--set", "train.precision=fp16", "--out", "r1"]),
        ("train --loss.lambda_ca 5 (prefix)", train + ["--loss.lambda_ca", "5"]),
        ("train --train.step 7 (prefix)", train + ["--train.step", "7"]),
        ("train --set loss.lamda_cat=1 (typo)", train + ["--set", "loss.lamda_cat=1"]),
        ("train --set train.steps=-3 (out of range)", train + ["--set", "train.steps=-3"]),
        ("train a truncated IDX file", train + ["--preset", "mnist", "--set", "data.root=data", "--out", "r2"]),
        ("train --resume a truncated checkpoint", train + ["--resume", "badckpt", "--out", "r3"]),
        ("train --train.device cuda without a GPU", train + TINY + ["--set", "train.device=cuda", "--out", "r4"]),
        ("train an empty --data.root", train + ["--preset", "mnist", "--set", "data.root=emptyroot", "--out", "r5"]),
        ("train a code-layout change on resume",
         train + ["--resume", "tinyrun/checkpoints/step_00000002", "--set", "codes.n_continuous=3", "--out", "r6"]),
        ("train --resume CKPT --train.steps N (the README's form; must work)",
         train + ["--resume", "tinyrun/checkpoints/step_00000002", "--set", "train.steps=4", "--set",
                  "eval.final=categorical", "--no-progress", "--out", "r7"]),
        ("evaluate a folder without checkpoints", [PY, "-m", "infogan.evaluate", "data"]),
        ("analysis collect on a missing mlflow.db",
         analysis + ["collect", "--tracking-uri", f"sqlite:///{work}/none/mlflow.db", "--sweep", "s"]),
        ("analysis collect on an empty mlflow.db",
         analysis + ["collect", "--tracking-uri", f"sqlite:///{work}/empty.db", "--sweep", "s"]),
        ("analysis report on tables that do not exist", analysis + ["report", "--tables", "notables", "--sweep", "s"]),
        ("analysis report on a table missing a column (right schema version)",
         analysis + ["report", "--tables", "tables", "--sweep", "s", "--out", "report"]),
        ("analysis collect --out where a file is (unwritable folder)",
         analysis + ["collect", "--tracking-uri", f"sqlite:///{work}/store/mlflow.db", "--sweep", "s", "--out",
                     "a-file", "--no-progress"]),
    ]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="infogan-bad-inputs-"))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        fixtures(work, env)
        print("| bad input | exit | what it prints (first `error:` line of stderr) | traceback | files left |")
        print("|---|---|---|---|---|")
        clear = total = 0
        for label, command in cases(work):
            before = {p.name for p in work.iterdir()}
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=work)
            errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
            line = errors[0] if errors else (proc.stderr.strip().splitlines() or [""])[-1]
            traceback = "Traceback" in proc.stderr
            left = sorted({p.name for p in work.iterdir()} - before)
            expected_ok = "must work" in label
            good = (proc.returncode == 0) if expected_ok else \
                (proc.returncode == 2 and len(errors) == 1 and not traceback and not left)
            clear += good
            total += 1
            shown = line.replace(str(work) + "/", "").replace(str(work), ".").replace("|", "/")[:240]
            print(f"| {label} | {proc.returncode} | {shown if not expected_ok else '(runs)'} | "
                  f"{'yes' if traceback else 'no'} | {', '.join(left) or '-'} |")
        print(f"\n{clear}/{total} bad inputs end as they should (exit 2, one error line, no traceback, nothing "
              f"written; the README's resume form runs)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
