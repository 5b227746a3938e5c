"""What `--backend slurm` adds over submitting the same job by hand, alternating A B A B.

    SLURM_CONF=... python bench/slurm_overhead.py [--rounds N]

A: `mlrun run bench/project -e noop --no-env --backend slurm` (waits for the run's end)
   vs `sbatch --wait` of a script that runs the same command in the same folder;
B: the submission alone: `mlrun run ... --detach` vs plain `sbatch`.
Targets: A's median pair ratio <= 1.2, B's median pair difference <= 0.3 s. The machine's load
average is printed before and after: compare numbers taken under similar load only.
Needs a cluster (scripts/slurm.sh start).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import measure, pair_difference, pair_ratio

HERE = Path(__file__).resolve().parent
CONFIG = json.dumps({"partition": "debug"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-slurm-"))
    try:
        shutil.copytree(HERE / "project", work / "project")
        script = work / "plain.sbatch"
        script.write_text(
            "#!/bin/bash\n#SBATCH --export=NIL\n"
            f"#SBATCH --output={work}/plain.out\n#SBATCH --chdir={work}/project\n"
            "exec bash -c true\n"
        )
        env = {**os.environ, "MLRUN_CACHE_DIR": str(work / "cache")}
        mlrun = [sys.executable, "-m", "mlrun_cli", "run", "project", "-e", "noop", "--no-env",
                 "--backend", "slurm", "--backend-config", CONFIG, "-q"]  # fmt: skip
        pairs = {
            "run, waiting (vs sbatch --wait)": (mlrun, ["sbatch", "--wait", str(script)]),
            "submission only (--detach vs sbatch)": ([*mlrun, "--detach"], ["sbatch", str(script)]),
        }
        measure(mlrun, env, work)  # warm the page cache and the validation stamp
        print(f"load average before: {_load()}")
        print("| comparison | mlrun median s | plain median s | pair ratio | pair difference s |")
        print("|---|---|---|---|---|")
        for label, (ours, theirs) in pairs.items():
            a, b = [], []
            for _ in range(args.rounds):
                a.append(measure(ours, env, work))
                b.append(measure(theirs, env, work))
            ma = statistics.median(s.seconds for s in a)
            mb = statistics.median(s.seconds for s in b)
            print(f"| {label} | {ma:.3f} | {mb:.3f} | {pair_ratio(a, b):.2f} | "
                  f"{pair_difference(a, b):+.3f} |")  # fmt: skip
        print(f"load average after: {_load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
