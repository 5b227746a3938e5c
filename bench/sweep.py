"""Sweep throughput: `mlrun sweep` of N noop children (-j 2) against a shell loop of `mlflow run`.

    python bench/sweep.py [--runs 50] [--pairs 1] [--mlflow PATH] [--mlrun PATH]

Alternates A B (mlflow loop, mlrun sweep) per pair and prints runs per second for each, their
ratio (target >= 30x; mlrun alone >= 20 runs/s), and how long the same sweep takes again with
--reuse (nothing runs; target < 1 s). Both sides record into MLflow file stores with the same
environment.
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

from measure import Sample, measure
from prepare import HERE, mlflow_venv, mlrun_venv, project_copy


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50, help="children per sweep")
    parser.add_argument("--pairs", type=int, default=1, help="A/B pairs to measure")
    parser.add_argument("--mlflow", help="an mlflow executable (default: the bench's own venv)")
    parser.add_argument("--mlrun", help="an mlrun executable (default: a wheel install)")
    args = parser.parse_args()
    mlflow = args.mlflow or str(mlflow_venv(log) / "bin" / "mlflow")
    mlrun = args.mlrun or str(mlrun_venv(log) / "bin" / "mlrun")
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-sweep-"))
    project = project_copy(work)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRUN_"))}
    base["MLFLOW_ALLOW_FILE_STORE"] = "true"
    base["PATH"] = os.pathsep.join([str(Path(mlflow).parent), base.get("PATH", "")])
    loop = (
        f"for i in $(seq {args.runs}); do {mlflow} run {project} -e noop --env-manager local "
        "-P i=$i >/dev/null || exit 1; done"
    )
    sweep = [mlrun, "sweep", str(project), "-e", "noop", "-P", f"i=range(0, {args.runs})"]
    sweep += ["-j", "2", "--no-env", "-q", "--json"]
    samples: dict[str, list[Sample]] = {"mlflow": [], "mlrun": [], "reuse": []}
    for pair in range(args.pairs):
        store = work / f"store-{pair}"
        loop_env = {**base, "MLFLOW_TRACKING_URI": (store / "a").as_uri()}
        samples["mlflow"].append(measure(["bash", "-c", loop], loop_env, work))
        env = {**base, "MLFLOW_TRACKING_URI": (store / "b").as_uri()}
        samples["mlrun"].append(measure([*sweep, "--reuse"], env, work))
        samples["reuse"].append(measure([*sweep, "--reuse"], env, work))
        log(f"pair {pair + 1}/{args.pairs}")
    mlflow_rate = args.runs / statistics.median(s.seconds for s in samples["mlflow"])
    mlrun_rate = args.runs / statistics.median(s.seconds for s in samples["mlrun"])
    reuse_seconds = statistics.median(s.seconds for s in samples["reuse"])
    lines = [
        "| workload | mlflow loop | mlrun sweep -j 2 | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| {args.runs} noop runs | {mlflow_rate:.2f} runs/s | {mlrun_rate:.2f} runs/s | "
        f"{mlrun_rate / mlflow_rate:.1f}x | >= 30x; mlrun >= 20 runs/s |",
        f"| same sweep again, --reuse | | {reuse_seconds:.3f} s | | < 1 s |",
    ]
    print("\n".join(lines))
    (HERE / "results").mkdir(exist_ok=True)
    document = {
        "format": 1,
        "runs": args.runs,
        "table": "\n".join(lines),
        "samples": {k: [s.seconds for s in v] for k, v in samples.items()},
    }
    (HERE / "results" / "sweep.json").write_text(json.dumps(document, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
