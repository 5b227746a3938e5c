"""Step 1: the raw data (a small synthetic table, the same for the same row count)."""

import csv
import math
import os
import random
import sys
import tempfile

try:
    import mlrun_log as tracking  # on PYTHONPATH when mlrun runs the step; imports in ms
except ImportError:
    import mlflow as tracking

rows = int(sys.argv[1])
rng = random.Random(0)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "raw.csv")
with open(path, "w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["x", "y"])
    for _ in range(rows):
        x = rng.uniform(-3, 3)
        writer.writerow([f"{x:.6f}", f"{2 * x + 0.5 * math.sin(3 * x) + rng.gauss(0, 0.1):.6f}"])
tracking.log_artifact(path, "raw")
print(f"wrote {rows} rows")
