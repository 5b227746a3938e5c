"""Step 2: features of x (powers of it), next to the target y."""

import csv
import os
import sys
import tempfile

try:
    import mlrun_log as tracking  # on PYTHONPATH when mlrun runs the step; imports in ms
except ImportError:
    import mlflow as tracking

with open(sys.argv[1], newline="") as raw:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(raw)]
folder = tempfile.mkdtemp()
path = os.path.join(folder, "features.csv")
with open(path, "w", newline="") as out:
    writer = csv.writer(out)
    writer.writerow(["x1", "x2", "x3", "y"])
    for x, y in rows:
        writer.writerow([f"{x:.6f}", f"{x * x:.6f}", f"{x**3:.6f}", f"{y:.6f}"])
tracking.log_artifact(path, "features")
print(f"featurized {len(rows)} rows")
