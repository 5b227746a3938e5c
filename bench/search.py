"""A 20-trial TPE search of examples/search: the MLflow way against `mlrun sweep --search`.

    python bench/search.py [--trials 20] [--pairs 1] [--seed 3]

The MLflow way is MLflow's examples/hyperparam driver: one parent run, and per trial a nested
run started with `mlflow.projects.run` (env manager local), its metric read back through
MlflowClient and told to the same Optuna TPE sampler. Against it, `mlrun sweep --search tpe`
at -j 1 and at -j 2, alternating A B C per pair after one uncounted warm-up round, wall time
each (target: mlrun at -j 1 at least 10x faster, -j 2 faster again). Every round checks that
both sides at -j 1 found the same best loss (same sampler, seed and objective: the same trials),
and times the trial's command alone N times in a row: the floor of any driver that starts one
process per trial, and so the best ratio such a driver can reach. Both record into MLflow file
stores and run the same entry point, which logs through mlrun_log (put on PYTHONPATH for
MLflow's side).

Then the cost of the pruning loop: two trials that each log a point every 0.1 s for 10 s,
-j 2, with `--prune median` and without; the difference in CPU time of the whole process tree
per running trial and second of wall time (target: under 2% of one CPU).

Needs mlflow and optuna in this interpreter (`pip install 'mlrun-cli[test]'`); runs the `mlrun`
beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "search"
RUNTIME = REPO / "mlrun_cli" / "runtime"
SPACE = ("-P", "lr=loguniform(1e-4,1e-1)", "-P", "dropout=uniform(0,0.5)",
         "-P", "layers=int(1,4)", "-P", "optimizer=choice(adam,sgd)")  # fmt: skip

DRIVER = """
import sys
import mlflow, optuna
from mlflow.tracking import MlflowClient
uri, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
client = MlflowClient()
with mlflow.start_run() as parent:
    for _ in range(trials):
        trial = study.ask()
        params = {
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "dropout": trial.suggest_float("dropout", 0, 0.5),
            "layers": trial.suggest_int("layers", 1, 4),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "sgd"]),
        }
        with mlflow.start_run(nested=True) as child:
            run = mlflow.projects.run(uri, entry_point="main", parameters=params,
                                      env_manager="local", run_id=child.info.run_id,
                                      synchronous=True)
        loss = client.get_run(run.run_id).data.metrics["loss"]
        study.tell(trial, loss)
print(study.best_value)
"""

TICKER = {
    "MLproject": """
name: ticker
entry_points:
  main:
    parameters:
      x: float
    command: "python tick.py {x}"
""",
    "tick.py": """import sys, time
import mlrun_log
x = float(sys.argv[1])
for step in range(100):
    mlrun_log.log_metric("loss", x + 1 / (step + 1), step=step)
    time.sleep(0.1)
""",
}


@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float  # user + system of the whole process tree


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> Timing:
    """Run once; os.wait4 gives the resources of the process and everything it reaped. The
    process's stdout is kept in cwd/stdout.txt (read by `best_value`)."""
    started = time.perf_counter()
    with (cwd / "stdout.txt").open("wb") as stdout:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=subprocess.PIPE)  # fmt: skip
        assert process.stderr is not None
        errors = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = errors.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"bench: {' '.join(argv[:4])} ... failed: {' | '.join(tail)}")
    return Timing(elapsed, usage.ru_utime + usage.ru_stime)


def best_value(cwd: Path) -> float:
    """The best loss the last timed search printed: the driver prints it alone, mlrun --json
    prints its summary."""
    text = (cwd / "stdout.txt").read_text().strip()
    if text.startswith("{"):
        return float(json.loads(text)["search"]["best"]["value"])
    return float(text.splitlines()[-1])


def entry_point_alone(project: Path, env: dict[str, str], trials: int) -> float:
    """The floor of any driver that starts one process per trial: the trial's command run
    `trials` times in a row, straight from this process (no mlrun, no MLflow)."""
    argv = ["bash", "-c", "python train.py --lr 0.003 --dropout 0.2 --layers 3 --optimizer adam"]
    started = time.perf_counter()
    for _ in range(trials):
        subprocess.run(argv, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=1, help="A B C rounds to measure")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    mlrun = str(Path(sys.executable).parent / "mlrun")
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-search-"))
    project = work / "search"
    shutil.copytree(EXAMPLE, project)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRUN_"))}
    base["MLFLOW_ALLOW_FILE_STORE"] = "true"
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    (work / "driver.py").write_text(DRIVER)
    search = [mlrun, "sweep", str(project), "--no-env", "-q", "--json", "--search", "tpe",
              "--trials", str(args.trials), "--seed", str(args.seed), "--objective", "loss",
              "--minimize", *SPACE]  # fmt: skip
    samples: dict[str, list[float]] = {"mlflow": [], "mlrun -j 1": [], "mlrun -j 2": [],
                                       "entry point alone": []}  # fmt: skip
    for pair in range(-1, args.pairs):  # round -1 warms both sides up and is not counted
        store = work / f"store-{pair}"
        mlflow_env = {**base, "MLFLOW_TRACKING_URI": (store / "a").as_uri(),
                      "PYTHONPATH": str(RUNTIME)}  # fmt: skip
        driver = [sys.executable, str(work / "driver.py"), str(project), str(args.trials),
                  str(args.seed)]  # fmt: skip
        seconds = {"mlflow": timed(driver, mlflow_env, work).seconds}
        best = {"mlflow": best_value(work)}
        for jobs, side in (("1", "b"), ("2", "c")):
            env = {**base, "MLFLOW_TRACKING_URI": (store / side).as_uri()}
            seconds[f"mlrun -j {jobs}"] = timed([*search, "-j", jobs], env, work).seconds
            best[f"mlrun -j {jobs}"] = best_value(work)
        if best["mlflow"] != best["mlrun -j 1"]:  # same sampler, seed and objective: same trials
            raise SystemExit(f"bench: the two sides searched differently: {best}")
        floor_env = {**base, "MLFLOW_TRACKING_URI": (store / "d").as_uri(),
                     "PYTHONPATH": str(RUNTIME)}  # fmt: skip
        seconds["entry point alone"] = entry_point_alone(project, floor_env, args.trials)
        if pair < 0:
            continue
        for name, value in seconds.items():
            samples[name].append(value)
        log(f"round {pair + 1}/{args.pairs}: " + ", ".join(
            f"{k} {v[-1]:.2f} s" for k, v in samples.items()))  # fmt: skip
    median = {k: statistics.median(v) for k, v in samples.items()}
    prune_cost = _pruning_cost(mlrun, base, work)
    poll_cost = _poll_cost(work)
    lines = [
        f"| {args.trials}-trial TPE search | wall time | vs MLflow's driver | target |",
        "| --- | ---: | ---: | --- |",
        f"| MLflow driver (mlflow.projects.run per trial) | {median['mlflow']:.1f} s | 1x | |",
        f"| mlrun sweep --search -j 1 | {median['mlrun -j 1']:.1f} s | "
        f"{median['mlflow'] / median['mlrun -j 1']:.1f}x | >= 10x |",
        f"| mlrun sweep --search -j 2 | {median['mlrun -j 2']:.1f} s | "
        f"{median['mlflow'] / median['mlrun -j 2']:.1f}x | faster than -j 1 |",
        f"| the trial's command alone, {args.trials} times in a row (the floor at -j 1) | "
        f"{median['entry point alone']:.1f} s | "
        f"{median['mlflow'] / median['entry point alone']:.1f}x | |",
        f"| pruning loop, per running trial (one poll, in process) | {poll_cost:.2f}% of one "
        "CPU | | < 2% |",
        f"| --prune minus no --prune, process tree CPU per running trial | {prune_cost:.2f}% "
        "of one CPU | | < 2% |",
    ]
    print("\n".join(lines))
    (HERE / "results").mkdir(exist_ok=True)
    document = {"format": 1, "trials": args.trials, "table": "\n".join(lines),
                "samples": samples, "pruning_cpu_percent": prune_cost,
                "poll_cpu_percent": poll_cost}  # fmt: skip
    (HERE / "results" / "search.json").write_text(json.dumps(document, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _poll_cost(work: Path, polls: int = 200) -> float:
    """CPU % of one core that one running trial's watch costs (every PRUNE_POLL_SECONDS):
    reading a run with 100 points of the objective and reporting the new ones to a pruner,
    measured in this process, as the search's loop does it."""
    sys.path.insert(0, str(REPO))
    import optuna

    from mlrun_cli.sweeps.trials import PRUNE_POLL_SECONDS
    from mlrun_cli.tracking.file_store import FileStore

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = FileStore(work / "poll" / "mlruns")
    experiment = store.get_or_create_experiment("poll")
    run = store.create_run(experiment, "poll", "bench", {})
    metrics = store.artifact_dir(run).parent / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "loss").write_text("".join(f"1700000000000 {1 / (s + 1)} {s}\n" for s in range(100)))
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
    trial = study.ask()
    started = time.process_time()
    for poll in range(polls):
        points = store.get_run(run.run_id).metric_history("loss")
        value = points[poll % len(points)][1]
        trial.report(value, poll)  # one new step per poll
        trial.should_prune()
    per_poll = (time.process_time() - started) / polls
    return per_poll / PRUNE_POLL_SECONDS * 100


def _pruning_cost(mlrun: str, base: dict[str, str], work: Path) -> float:
    """CPU % of one core that --prune adds per running trial (two 10 s trials at once)."""
    project = work / "ticker"
    for name, text in TICKER.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    argv = [mlrun, "sweep", str(project), "--no-env", "-q", "--search", "random",
            "--trials", "2", "-j", "2", "--objective", "loss", "--minimize",
            "-P", "x=uniform(0,1)"]  # fmt: skip
    costs = {}
    for label, extra in (("plain", []), ("prune", ["--prune", "median"])):
        env = {**base, "MLFLOW_TRACKING_URI": (work / f"ticks-{label}").as_uri()}
        costs[label] = timed([*argv, *extra], env, work)
        log(f"{label}: {costs[label].seconds:.1f} s, {costs[label].cpu_seconds:.2f} s CPU")
    extra_cpu = costs["prune"].cpu_seconds - costs["plain"].cpu_seconds
    return max(0.0, extra_cpu) / (2 * costs["prune"].seconds) * 100


if __name__ == "__main__":
    sys.exit(main())
