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
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import BenchError, Sample, Summary, measure, pair_difference, pair_ratio
from prepare import (
    HERE,
    mlflow_venv,
    mlflow_version,
    mlrun_venv,
    project_copy,
    requirements,
    run_store,
    runtime_dir,
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
SEARCH_SIZES = (2000, 10000, 50000)
LIST_SIZE = 50000
BIG_STORE = 10000


@dataclass
class Workload:
    name: str
    mlflow: Maker | None  # None: nothing comparable in MLflow, only mlrun (and a floor)
    mlrun: Maker
    floor: Maker | None = None
    target: str = ""
    quick: bool = True  # part of --quick
    repetitions: int | None = None  # fewer pairs where one side takes a minute
    warm_up: tuple[str, ...] = ("mlflow", "mlrun", "floor")  # sides run once before counting


@dataclass
class Result:
    name: str
    target: str
    mlflow: Summary | None = None
    mlrun: Summary | None = None
    floor: Summary | None = None
    ratio: float | None = None  # mlflow / mlrun, pair by pair
    over_floor: float | None = None  # mlrun - floor, pair by pair
    error: str | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def store_uri(size: int) -> str:
    return run_store(size, log).as_uri()


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

    def warm_env_python(self, env_root: Path) -> str:
        """The python of the one env mlrun built under `env_root` (after the warm-up)."""
        [python] = env_root.glob("*/env/bin/python")
        return str(python)

    def interpreter_start(self) -> Command:
        """The floor of a start: the interpreter mlrun runs on, doing nothing."""
        return [self.mlrun_python, "-c", "pass"], self.env()

    def direct_main(self, env_root: Path) -> Command:
        """The floor of a warm-env run: the entry point started by hand with the env's python."""
        python = self.warm_env_python(env_root)
        argv = [
            "bash",
            "-c",
            f"cd {self.project} && {python} main.py --alpha 0.5",
        ]
        return argv, self.env(MLFLOW_TRACKING_URI=self.store("direct"))

    def mlrun_list(self, store: str, *extra: str) -> Command:
        argv = [*self.mlrun, "runs", "list", "--experiment-id", "0", *extra, "--tracking-uri"]
        return [*argv, store], self.env()

    def search_workloads(self) -> list[Workload]:
        found = []
        for size in SEARCH_SIZES:
            store = partial(store_uri, size)  # built on first use, then cached
            found.append(
                Workload(
                    f"search {size:,} runs -> 1,000 rows",
                    lambda i, store=store: (
                        [self.mlflow_python, "-c", MLFLOW_SEARCH],
                        self.env(BENCH_STORE=store()),
                    ),
                    lambda i, store=store: self.mlrun_list(
                        store(), "--filter", "metrics.m > 0.5", "--max-results", "1000", "--json"
                    ),
                    target=">= 7x; cost at most linear in runs",
                    repetitions=1 if size > 10000 else None,
                    warm_up=("mlrun",),  # the same files, in the page cache for both
                )
            )
        found.append(
            Workload(
                f"runs list (20 newest) of {LIST_SIZE:,} runs",
                None,
                lambda i: self.mlrun_list(store_uri(LIST_SIZE), "--max-results", "20"),
                target="<= 0.5 s; peak RSS <= 30 MB",
            )
        )
        return found

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

    def in_big_store(self, tool: str, command: Command) -> Command:
        """The command recording into a copy (one per tool) of the cached store of BIG_STORE
        runs: a run must not cost more where many runs were recorded before."""
        copy = self.work / f"big-store-{tool}"
        if not copy.exists():
            original = run_store(BIG_STORE, log)
            shutil.copytree(original, copy, symlinks=True)
            experiment = copy / "0" / "meta.yaml"  # new runs' artifacts go into the copy
            experiment.write_text(experiment.read_text().replace(original.as_uri(), copy.as_uri()))
        argv, env = command
        return argv, {**env, "MLFLOW_TRACKING_URI": copy.as_uri()}

    def on_server(self, command: Command) -> Command:
        argv, env = command
        return argv, {**env, "MLFLOW_TRACKING_URI": self.server.uri}

    def workloads(self) -> list[Workload]:
        warm_mlflow, warm_mlrun = self.work / "mlflow-envs", self.work / "mlrun-envs"
        reqs = requirements(self.work)
        uv = str(Path(self.mlrun_python).parent / "uv")
        py = sys.executable
        return [
            Workload(
                "CLI start: --version",
                lambda i: ([self.mlflow, "--version"], self.env()),
                lambda i: ([*self.mlrun, "--version"], self.env()),
                floor=lambda i: self.interpreter_start(),
                target="mlrun / floor <= 1.5x (floor: `python -c pass`)",
            ),
            Workload(
                "run -e noop, local env",
                lambda i: self.mlflow_run("noop", "local", warm_mlflow),
                lambda i: self.mlrun_run("noop", "local", warm_mlrun),
                floor=lambda i: self.interpreter_start(),
                target="mlrun / floor <= 2.5x (floor: `python -c pass`), >= 80x",
            ),
            Workload(
                f"run -e noop, local env, a store of {BIG_STORE:,} runs",
                lambda i: self.in_big_store(
                    "mlflow", self.mlflow_run("noop", "local", warm_mlflow)
                ),
                lambda i: self.in_big_store("mlrun", self.mlrun_run("noop", "local", warm_mlrun)),
                target="as fast as in an empty store (row above)",
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
                floor=lambda i: self.direct_main(warm_mlrun),
                target="mlrun - floor <= 0.03 s (floor: main.py with the env's python)",
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
                        f"{uv} pip install -q --compile-bytecode --python $d/bin/python -r {reqs}",
                    ],
                    self.env(),
                ),
                target="<= 1.2x the floor (raw uv venv + pip install --compile-bytecode)",
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
            *self.search_workloads(),
            *self.server_workloads(),
        ]

    def run(self, workload: Workload, repetitions: int) -> Result:
        result = Result(workload.name, workload.target)
        repetitions = min(repetitions, workload.repetitions or repetitions)
        makers = {"mlrun": workload.mlrun}
        if workload.mlflow is not None:
            makers = {"mlflow": workload.mlflow, **makers}
        if workload.floor is not None:
            makers["floor"] = workload.floor
        try:
            for side, maker in makers.items():  # warm-up: caches, first-time builds
                if side not in workload.warm_up:
                    continue
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
        result.mlrun = Summary.of(samples["mlrun"])
        if "mlflow" in samples:
            result.mlflow = Summary.of(samples["mlflow"])
            result.ratio = pair_ratio(samples["mlflow"], samples["mlrun"])
        if "floor" in samples:
            result.floor = Summary.of(samples["floor"])
            result.over_floor = pair_difference(samples["mlrun"], samples["floor"])
        return result


def table(results: list[Result]) -> str:
    lines = [
        "| workload | mlflow median | mlrun median | ratio mlflow/mlrun | floor median "
        "| mlrun - floor | mlrun / floor | mlrun peak RSS | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        if r.error or r.mlrun is None:
            lines.append(f"| {r.name} | failed: {r.error} | | | | | | | {r.target} |")
            continue
        mlflow = f"{r.mlflow.median:.3f} s" if r.mlflow else "-"
        ratio = f"{r.ratio:.1f}x" if r.ratio else "-"
        floor = over = times = "-"
        if r.floor is not None and r.over_floor is not None:
            floor, over = f"{r.floor.median:.3f} s", f"{r.over_floor:+.3f} s"
            times = f"{r.mlrun.median / r.floor.median:.2f}x"
        lines.append(
            f"| {r.name} | {mlflow} | {r.mlrun.median:.3f} s | {ratio} | {floor} | {over} "
            f"| {times} | {r.mlrun.peak_rss_mb:.0f} MB | {r.target} |"
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
        "mlrun_minus_floor": result.over_floor,
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
