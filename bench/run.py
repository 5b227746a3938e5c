"""Measure mlrun against `mlflow run` on the same workloads, alternating A B A B.

    python bench/run.py [--quick] [--only NAME]...

Prints one markdown table and writes it, with every raw number, to bench/results/latest.json.
Both tools use MLflow's file store (MLFLOW_ALLOW_FILE_STORE=true) and the same environment
variables, PYTHONDONTWRITEBYTECODE included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import BenchError, Sample, Summary, measure, pair_ratio
from prepare import (
    HERE,
    mlflow_venv,
    mlflow_version,
    mlrun_venv,
    project_copy,
    requirements,
    runtime_dir,
    search_store,
)
from server import TrackingServer

Command = tuple[list[str], dict[str, str]]
Maker = Callable[[int], Command]

MLFLOW_LOG_METRICS = """
import mlflow
mlflow.set_tracking_uri(__import__("os").environ["BENCH_STORE"])
with mlflow.start_run():
    for i in range(10000):
        mlflow.log_metric("m", i * 0.5, step=i)
"""
MLRUN_LOG_METRICS = """
import os
os.environ["MLFLOW_TRACKING_URI"] = os.environ["BENCH_STORE"]
import mlrun_log as ml
for i in range(10000):
    ml.log_metric("m", i * 0.5, step=i)
"""
MLFLOW_SEARCH = """
import mlflow
mlflow.set_tracking_uri(__import__("os").environ["BENCH_STORE"])
runs = mlflow.search_runs(["0"], "metrics.m > 0.5", max_results=1000)
assert len(runs) == 1000, len(runs)
"""


@dataclass
class Workload:
    name: str
    mlflow: Maker
    mlrun: Maker
    floor: Maker | None = None
    target: str = ""
    quick: bool = True  # part of --quick


@dataclass
class Result:
    name: str
    target: str
    mlflow: Summary | None = None
    mlrun: Summary | None = None
    floor: Summary | None = None
    ratio: float | None = None
    error: str | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, work: Path, mlflow_env: Path, mlrun_env: Path) -> None:
        self.work = work
        self.mlflow = str(mlflow_env / "bin" / "mlflow")
        self.mlflow_python = str(mlflow_env / "bin" / "python")
        self.mlrun = [str(mlrun_env / "bin" / "mlrun")]
        self.mlrun_python = str(mlrun_env / "bin" / "python")
        self.runtime = runtime_dir(mlrun_env)
        self.project = project_copy(work)
        self.base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRUN_"))}
        self.base["MLFLOW_ALLOW_FILE_STORE"] = "true"
        self.base["PATH"] = os.pathsep.join([str(mlflow_env / "bin"), self.base.get("PATH", "")])
        self.fresh = 0
        self.server = TrackingServer(self.mlflow, work)

    def dir(self, name: str) -> Path:
        """A new directory for one repetition (a cold cache, an empty store)."""
        self.fresh += 1
        return self.work / f"{name}-{self.fresh}"

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base, **extra}

    def store(self, tool: str) -> str:
        return (self.work / f"store-{tool}").as_uri()

    def mlflow_run(self, entry: str, manager: str, env_root: Path) -> Command:
        argv = [self.mlflow, "run", str(self.project), "-e", entry, "--env-manager", manager]
        return argv, self.env(
            MLFLOW_TRACKING_URI=self.store("mlflow"), MLFLOW_ENV_ROOT=str(env_root)
        )

    def mlrun_run(self, entry: str, manager: str, env_root: Path) -> Command:
        argv = [*self.mlrun, "run", str(self.project), "-e", entry, "--env-manager", manager, "-q"]
        return argv, self.env(MLFLOW_TRACKING_URI=self.store("mlrun"), MLRUN_ENV_ROOT=str(env_root))

    def server_workloads(self) -> list[Workload]:
        """Both tools against one real `mlflow server` (started when first needed)."""
        return [
            Workload(
                "10k log_metric over REST, same server",
                lambda i: (
                    [self.mlflow_python, "-c", MLFLOW_LOG_METRICS],
                    self.env(BENCH_STORE=self.server.uri),
                ),
                lambda i: (
                    [self.mlrun_python, "-c", MLRUN_LOG_METRICS],
                    self.env(BENCH_STORE=self.server.uri, PYTHONPATH=self.runtime),
                ),
                target=">= 20x",
                quick=False,
            ),
            Workload(
                "run -e noop against a server",
                lambda i: self.on_server(self.mlflow_run("noop", "local", self.work / "m-envs")),
                lambda i: self.on_server(self.mlrun_run("noop", "local", self.work / "r-envs")),
                target=">= 10x",
                quick=False,
            ),
        ]

    def on_server(self, command: Command) -> Command:
        argv, env = command
        return argv, {**env, "MLFLOW_TRACKING_URI": self.server.uri}

    def workloads(self) -> list[Workload]:
        warm_mlflow, warm_mlrun = self.work / "mlflow-envs", self.work / "mlrun-envs"
        reqs = requirements(self.work)
        uv = str(Path(self.mlrun_python).parent / "uv")
        py = sys.executable
        search = search_store(self.work).as_uri()
        return [
            Workload(
                "CLI start: --version",
                lambda i: ([self.mlflow, "--version"], self.env()),
                lambda i: ([*self.mlrun, "--version"], self.env()),
                target=">= 50x",
            ),
            Workload(
                "run -e noop, local env",
                lambda i: self.mlflow_run("noop", "local", warm_mlflow),
                lambda i: self.mlrun_run("noop", "local", warm_mlrun),
                target=">= 20x",
            ),
            Workload(
                "run -e pypass, local env",
                lambda i: self.mlflow_run("pypass", "local", warm_mlflow),
                lambda i: self.mlrun_run("pypass", "local", warm_mlrun),
            ),
            Workload(
                "run -e main, warm uv env",
                lambda i: self.mlflow_run("main", "uv", warm_mlflow),
                lambda i: self.mlrun_run("main", "uv", warm_mlrun),
                target=">= 20x",
            ),
            Workload(
                "run -e main, warm virtualenv env",
                lambda i: self.mlflow_run("main", "virtualenv", warm_mlflow),
                lambda i: self.mlrun_run("main", "virtualenv", warm_mlrun),
                target=">= 20x",
                quick=False,
            ),
            Workload(
                "cold env build, uv",
                lambda i: self.mlflow_run("noop", "uv", self.dir("mlflow-cold")),
                lambda i: self.mlrun_run("noop", "uv", self.dir("mlrun-cold")),
                floor=lambda i: (
                    [
                        "bash",
                        "-c",
                        f"d={self.dir('raw')}; {uv} venv -q -p {py} $d && "
                        f"{uv} pip install -q --python $d/bin/python -r {reqs}",
                    ],
                    self.env(),
                ),
                target="mlrun within 1.2x of the floor",
            ),
            Workload(
                "cold env build, virtualenv",
                lambda i: self.mlflow_run("noop", "virtualenv", self.dir("mlflow-cold")),
                lambda i: self.mlrun_run("noop", "virtualenv", self.dir("mlrun-cold")),
                floor=lambda i: (
                    [
                        "bash",
                        "-c",
                        f"d={self.dir('raw')}; {py} -m venv $d && $d/bin/pip install -q -r {reqs}",
                    ],
                    self.env(),
                ),
                quick=False,
            ),
            Workload(
                "10k log_metric (import included)",
                lambda i: (
                    [self.mlflow_python, "-c", MLFLOW_LOG_METRICS],
                    self.env(BENCH_STORE=self.dir("store").as_uri()),
                ),
                lambda i: (
                    [self.mlrun_python, "-c", MLRUN_LOG_METRICS],
                    self.env(BENCH_STORE=self.dir("store").as_uri(), PYTHONPATH=self.runtime),
                ),
                target=">= 7x",
            ),
            Workload(
                "search 2,000 runs -> 1,000 rows",
                lambda i: ([self.mlflow_python, "-c", MLFLOW_SEARCH], self.env(BENCH_STORE=search)),
                lambda i: (
                    [
                        *self.mlrun,
                        "runs",
                        "list",
                        "--experiment-id",
                        "0",
                        "--filter",
                        "metrics.m > 0.5",
                        "--max-results",
                        "1000",
                        "--json",
                        "--tracking-uri",
                        search,
                    ],
                    self.env(),
                ),
                target=">= 4x",
            ),
            *self.server_workloads(),
        ]

    def run(self, workload: Workload, repetitions: int) -> Result:
        result = Result(workload.name, workload.target)
        makers = {"mlflow": workload.mlflow, "mlrun": workload.mlrun}
        if workload.floor is not None:
            makers["floor"] = workload.floor
        try:
            for side, maker in makers.items():  # warm-up: caches, first-time builds
                log(f"{workload.name}: warm-up {side}")
                measure(*maker(-1), cwd=self.work)
            samples: dict[str, list[Sample]] = {side: [] for side in makers}
            for index in range(repetitions):
                for side, maker in makers.items():  # A B A B ...
                    samples[side].append(measure(*maker(index), cwd=self.work))
                log(f"{workload.name}: pair {index + 1}/{repetitions}")
        except BenchError as exc:
            result.error = str(exc)
            log(f"{workload.name}: FAILED: {exc}")
            return result
        result.samples = samples
        result.mlflow, result.mlrun = Summary.of(samples["mlflow"]), Summary.of(samples["mlrun"])
        result.floor = Summary.of(samples["floor"]) if "floor" in samples else None
        result.ratio = pair_ratio(samples["mlflow"], samples["mlrun"])
        return result


def table(results: list[Result]) -> str:
    lines = [
        "| workload | mlflow median | mlrun median | ratio mlflow/mlrun | floor median "
        "| mlrun peak RSS | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        if r.error or r.mlflow is None or r.mlrun is None:
            lines.append(f"| {r.name} | failed: {r.error} | | | | | {r.target} |")
            continue
        floor = f"{r.floor.median:.3f} s" if r.floor else ""
        lines.append(
            f"| {r.name} | {r.mlflow.median:.3f} s | {r.mlrun.median:.3f} s | {r.ratio:.1f}x | "
            f"{floor} | {r.mlrun.peak_rss_mb:.0f} MB | {r.target} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and workloads (< 3 min)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="workloads whose name contains this (even those --quick leaves out)",
    )
    args = parser.parse_args()
    repetitions = 2 if args.quick else 5
    venv = mlflow_venv(log)
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-"))
    bench = Bench(work, venv, mlrun_venv(log))
    chosen = [
        w
        for w in bench.workloads()
        if (any(o in w.name for o in args.only) if args.only else (not args.quick or w.quick))
    ]
    started = time.time()
    try:
        results = [bench.run(w, repetitions) for w in chosen]
    finally:
        bench.server.stop()
    markdown = table(results)
    print(markdown)
    print(
        f"\nPYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '-')} for both; "
        f"{repetitions} counted pairs after one warm-up each; mlflow {mlflow_version(venv)}; "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; {time.time() - started:.0f} s"
    )
    document = {
        "format": 1,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "mlflow_version": mlflow_version(venv),
        "repetitions": repetitions,
        "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "table": markdown,
        "results": [_result_json(r) for r in results],
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "latest.json").write_text(json.dumps(document, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


def _result_json(result: Result) -> Mapping[str, object]:
    return {
        "name": result.name,
        "target": result.target,
        "error": result.error,
        "ratio": result.ratio,
        "summaries": {
            k: asdict(v)
            for k, v in (
                ("mlflow", result.mlflow),
                ("mlrun", result.mlrun),
                ("floor", result.floor),
            )
            if v is not None
        },
        "samples": {side: [asdict(s) for s in samples] for side, samples in result.samples.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
