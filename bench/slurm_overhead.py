"""What `--backend slurm` adds over submitting the same job by hand, alternating A B A B.

    SLURM_CONF=... python bench/slurm_overhead.py [--rounds N]

A: `mlrun run bench/project -e noop --no-env --backend slurm` (waits for the run's end)
   vs `sbatch --wait` of a script that runs the same command in the same folder;
B: the submission alone: `mlrun run ... --detach` vs plain `sbatch`.
Target: A's median difference <= 0.3 s. Needs a cluster (scripts/slurm.sh start).
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

from measure import measure

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
        print("| comparison | mlrun median s | plain median s | difference s |")
        print("|---|---|---|---|")
        for label, (ours, theirs) in pairs.items():
            a, b = [], []
            for _ in range(args.rounds):
                a.append(measure(ours, env, work).seconds)
                b.append(measure(theirs, env, work).seconds)
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"| {label} | {ma:.3f} | {mb:.3f} | {ma - mb:+.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
