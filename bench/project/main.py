"""The benchmark's real entry point: one param and one metric through MLflow's API."""

import argparse

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True)
args = parser.parse_args()

with mlflow.start_run():
    mlflow.log_param("alpha_used", args.alpha)
    mlflow.log_metric("m", 1.0)
