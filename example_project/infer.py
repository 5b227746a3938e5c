"""Load a trained iris classifier and print its prediction for each row of a CSV file."""

import argparse

import joblib
import pandas as pd

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier-path", required=True)
    parser.add_argument("--input-file", required=True)
    args = parser.parse_args()

    model = joblib.load(args.classifier_path)
    data = pd.read_csv(args.input_file)
    for row, label in zip(
        data[FEATURES].itertuples(index=False), model.predict(data[FEATURES]), strict=True
    ):
        print(",".join(str(v) for v in row), label, sep=" -> ")


if __name__ == "__main__":
    main()
