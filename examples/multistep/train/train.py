"""Step 3: ridge regression by its normal equations (the standard library only), its RMSE."""

import csv
import math
import sys

try:
    import mlrun_log as tracking  # on PYTHONPATH when mlrun runs the step; imports in ms
except ImportError:
    import mlflow as tracking


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [v - f * p for v, p in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


alpha = float(sys.argv[2])
with open(sys.argv[1], newline="") as data:
    table = [[float(v) for v in row.values()] for row in csv.DictReader(data)]
xs = [[1.0, *row[:-1]] for row in table]
ys = [row[-1] for row in table]
columns = list(zip(*xs, strict=True))
k = len(columns)
gram = [
    [dot(columns[i], columns[j]) + (alpha if i == j > 0 else 0) for j in range(k)] for i in range(k)
]
weights = solve(gram, [dot(columns[i], ys) for i in range(k)])
rmse = math.sqrt(sum((dot(weights, x) - y) ** 2 for x, y in zip(xs, ys, strict=True)) / len(ys))
tracking.log_metric("rmse", rmse)
print(f"rmse {rmse:.4f}")
