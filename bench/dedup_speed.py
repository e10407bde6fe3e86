"""Edge deduplication of a million-node kNN graph (k = 10, 2-D), cold (the first
call in a fresh process) and warm, on this interpreter's numpy. run_all.py runs it
in fresh processes on numpy 1 (the ROS venv) and numpy 2 (.venv-numpy2)."""
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(n=1_000_000, k=10, seed=0):
    from scipy.spatial import cKDTree

    from latent_geodesics.graph.latent_graph import unique_pairs
    z = np.random.default_rng(seed).normal(size=(n, 2))
    start = time.perf_counter()
    dist, idx = cKDTree(z).query(z, k + 1)
    knn = time.perf_counter() - start
    times = []
    for _ in range(4):
        start = time.perf_counter()
        pairs = unique_pairs(idx, n, dist)
        times.append(time.perf_counter() - start)
    return {"numpy": np.__version__, "n": n, "pairs": int(len(pairs)), "knn_s": knn,
            "cold_s": times[0], "warm_s": min(times[1:])}


def dedup_speed():
    """The measurement in fresh processes, on every numpy at hand."""
    pythons = [sys.executable, os.path.join(ROOT, ".venv-numpy2", "bin", "python")]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    rows = []
    for python in pythons:
        if os.path.isfile(python):
            out = subprocess.run([python, os.path.abspath(__file__)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def report_lines(rows):
    md = ["", "## 1b. Edge deduplication, N = 1,000,000 (2-D, k = 10), fresh processes",
          "Target: under 1 s on numpy 1 and 2, the first call included; the k-d tree's "
          "kNN query in the same process is the baseline.", "",
          "| numpy | pairs | kNN (k-d tree) s | first call s | warm s |", "|---|---|---|---|---|"]
    md += ["| %s | %d | %.2f | %.2f | %.2f |" % (r["numpy"], r["pairs"], r["knn_s"],
                                                r["cold_s"], r["warm_s"]) for r in rows]
    return md


if __name__ == "__main__":
    print(json.dumps(measure()))
