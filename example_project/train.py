"""Train the iris classifier: PCA + SGDClassifier, tuned by cross-validated grid search.

Written as any MLflow user writes it: `mlflow.start_run()` attaches to the run that
`mlrun run` (or `mlflow run`) created, through MLFLOW_RUN_ID.
"""

import argparse
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-file", required=True)
    parser.add_argument("--output-file", required=True)
    parser.add_argument("--alpha", type=float, required=True)
    args = parser.parse_args()

    data = pd.read_csv(args.input_file)
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA()),
            ("clf", SGDClassifier(alpha=args.alpha, random_state=0)),
        ]
    )
    grid = GridSearchCV(pipeline, {"pca__n_components": [2, 3, 4]}, cv=5)

    with mlflow.start_run():
        grid.fit(data[FEATURES], data["species"])
        Path(args.output_file).parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(grid.best_estimator_, args.output_file)

        mlflow.log_artifact(args.input_file, artifact_path="data")
        mlflow.log_param("best_n_components", grid.best_params_["pca__n_components"])
        mlflow.log_metric("best_cv_score", grid.best_score_)
        mlflow.log_artifact(args.output_file, artifact_path="model")
        print(f"best cv score {grid.best_score_:.3f} with {grid.best_params_}")


if __name__ == "__main__":
    main()
