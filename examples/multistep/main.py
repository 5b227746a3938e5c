"""Runs load -> featurize -> train through the Python API, each step reading the artifact of
the step before it by `runs:/`.

With mlrun (`--api mlrun`) every step is `reuse=True`: a step whose code, parameters and input
are unchanged is not run again, and its earlier run id is returned (MLflow's multistep example
writes `_get_or_run` by hand for this). With `--api mlflow` the same driver calls
`mlflow.projects.run`, which runs every step every time.
"""

import argparse
import importlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--api", choices=("mlrun", "mlflow"), default="mlrun")
    args = parser.parse_args()
    projects = importlib.import_module(
        "mlrun_cli.projects" if args.api == "mlrun" else "mlflow.projects"
    )
    mlrun_only = {"reuse": True} if args.api == "mlrun" else {}

    def step(name: str, **parameters: object) -> str:
        submitted = projects.run(
            os.path.join(HERE, name), parameters=parameters, env_manager="local", **mlrun_only
        )
        print(f"{name}: run {submitted.run_id}", flush=True)
        return submitted.run_id

    load = step("load", rows=args.rows)
    features = step("featurize", raw=f"runs:/{load}/raw/raw.csv")
    step("train", features=f"runs:/{features}/features/features.csv", alpha=args.alpha)


if __name__ == "__main__":
    main()
