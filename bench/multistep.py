"""The multistep example (driver + load, featurize, train) through each tool's Python API.

    python bench/multistep.py [--pairs 3] [--python PATH]

A host process calls `mlflow.projects.run` (A) or `mlrun_cli.projects.run` (B) on
examples/multistep's driver, whose steps go through the same API (`-P api=mlflow|mlrun`).
"cold": a fresh store, every step runs. "again": the same call on that store once more; mlrun
reuses every step (`reuse=True` in the driver), MLflow runs them all again (it has no run
cache). A and B alternate (one warm-up pair, then --pairs counted), both with
`env_manager="local"` and a file store; each step logs through `mlflow` under MLflow and
through `mlrun_log` under mlrun (the example's steps pick what is importable). The interpreter
(--python, default this one) must have both `mlflow` and this checkout of mlrun installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Sample, measure, pair_ratio

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "multistep"
HOST = {
    "mlflow": "import mlflow.projects as p, sys; "
    "p.run(sys.argv[1], parameters={'api': 'mlflow'}, env_manager='local')",
    "mlrun": "import mlrun_cli.projects as p, sys; "
    "p.run(sys.argv[1], parameters={'api': 'mlrun'}, env_manager='local')",
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def one_pair(python: str, work: Path, base: dict[str, str], index: int) -> dict[str, Sample]:
    """cold and again for each tool, alternating A B A B, each in a fresh copy and store."""
    samples: dict[str, Sample] = {}
    stores = {}
    for tool in HOST:
        folder = work / f"{tool}-{index}"
        shutil.copytree(EXAMPLE, folder / "project")
        stores[tool] = folder
    for phase in ("cold", "again"):
        for tool, code in HOST.items():
            folder = stores[tool]
            env = {**base, "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri()}
            argv = [python, "-c", code, str(folder / "project")]
            samples[f"{tool} {phase}"] = measure(argv, env, folder)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs to measure")
    parser.add_argument("--python", default=sys.executable, help="with mlflow and mlrun")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-multistep-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRUN_"))}
    base["MLFLOW_ALLOW_FILE_STORE"] = "true"
    base["MLRUN_CACHE_DIR"] = str(work / "cache")
    base["PATH"] = os.pathsep.join([str(Path(args.python).parent), base.get("PATH", "")])
    try:
        log("warm-up pair")
        one_pair(args.python, work, base, 0)
        pairs = []
        for index in range(1, args.pairs + 1):
            log(f"pair {index}/{args.pairs}")
            pairs.append(one_pair(args.python, work, base, index))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"multistep example, {args.pairs} alternating pairs (seconds: median [min-max])")
    for phase in ("cold", "again"):
        for tool in HOST:
            seconds = [p[f"{tool} {phase}"].seconds for p in pairs]
            print(
                f"  {tool:6} {phase:5}  {statistics.median(seconds):6.2f}  "
                f"[{min(seconds):.2f}-{max(seconds):.2f}]"
            )
        ratio = pair_ratio([p[f"mlflow {phase}"] for p in pairs],
                           [p[f"mlrun {phase}"] for p in pairs])  # fmt: skip
        print(f"  mlflow/mlrun {phase}: {ratio:.1f}x (median of pair ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
