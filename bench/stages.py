"""Where a served ~graph_geodesic spends its time: every stage of the request timed
in-process (one torch thread, as the server runs with torch_threads 1) on the
N = 10,000 arm graph of section 2 (trained arm, data-aware metric), p50 and p99
per stage and of the whole request.

Stages are timed by wrapping the functions the engine calls (this module only;
the package carries no timers), so the same wrappers time an older source tree:
with a baseline git ref, its src/ is exported (git archive) and both trees answer
the same queries on the same saved model, each in a process of its own, in
alternating rounds so that a loaded machine's drift lands on both alike.

    python bench/stages.py MODEL_DIR [--queries N] [--profile]   one tree, JSON out
    python bench/stages.py MODEL_DIR --baseline REF               the table, both trees
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (stage, module, attribute): the functions a graph geodesic passes through, in order.
# A path "Class.method" wraps a method; a stage missing from a tree is left untimed.
STAGES = [
    ("endpoints", "latent_geodesics.serving.engine", "endpoints"),
    ("search", "latent_geodesics.graph.latent_graph", "LatentGraph._node_path"),
    ("shortcut", "latent_geodesics.graph.latent_graph", "shortcut"),
    ("shortcut", "latent_geodesics.graph.latent_graph", "shortcut_segments"),
    ("shortcut", "latent_geodesics.graph.latent_graph", "path_embedding"),
    ("shortcut", "latent_geodesics.graph.latent_graph", "exact_hops"),
    ("relax", "latent_geodesics.graph.latent_graph", "relax"),
    ("candidates", "latent_geodesics.graph.latent_graph", "measured_chain"),
    ("candidates", "latent_geodesics.graph.latent_graph", "best_candidate"),
    ("smoothing", "latent_geodesics.serving.planning", "smoothed"),
    ("dense decode", "latent_geodesics.serving.planning", "dense_positions"),
    ("waypoints", "latent_geodesics.serving.planning", "select_waypoints"),
    ("limits", "latent_geodesics.serving.trajectory", "JointLimits.clip"),
    ("timing", "latent_geodesics.serving.planning", "time_parametrize"),
    ("fidelity", "latent_geodesics.serving.planning", "fidelity"),
]
ORDER = list(dict.fromkeys(name for name, _, _ in STAGES)) + ["message", "other", "total"]


class StageTimer:
    """Per-request seconds of each stage, by wrapping the stages' functions."""

    def __init__(self):
        self.current = defaultdict(float)
        self.rows = []

    def wrap(self, stage, module, path):
        owner = importlib.import_module(module)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        inner = getattr(owner, name, None)
        if inner is None:
            return
        if isinstance(inner, staticmethod):
            inner = inner.__func__

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.current[stage] += time.perf_counter() - start
        setattr(owner, name, timed)

    def end_request(self, total):
        row = dict(self.current)
        row["total"] = total
        row["other"] = total - sum(v for k, v in row.items() if k != "total")
        self.rows.append(row)
        self.current = defaultdict(float)


def message(result):
    """What a front end fills from the result (service.fill with plain objects)."""
    from types import SimpleNamespace

    from latent_geodesics.serving.service import Reply, fill, geodesic_fields, trajectory_points
    reply = Reply(True, "graph geodesic", geodesic_fields(result), result)
    msg = SimpleNamespace(success=False, message="", trajectory=None, stats=None)
    return fill(msg, reply, trajectory_points, dict)


def queries(model_dir, n, seed=0):
    """n latent start/goal pairs over the model's encoded data (as section 6 asks)."""
    z = np.load(os.path.join(model_dir, "latents.npy"))
    rng = np.random.default_rng(seed)
    return [(([], [], list(z[i])), ([], [], list(z[j])))
            for i, j in (rng.choice(len(z), 2, replace=False) for _ in range(n))]


def run(model_dir, n, warm=20, profile=None):
    """Stage rows of n queries in this process, and each served path's data distance."""
    import torch

    from latent_geodesics.serving.engine import Engine, Settings
    torch.set_num_threads(1)   # the server's torch_threads
    engine = Engine(model_dir, Settings(), log=lambda m: None)
    timer = StageTimer()
    for stage, module, path in STAGES:
        timer.wrap(stage, module, path)
    asked = queries(model_dir, warm + n)
    for start, goal in asked[:warm]:   # landmarks, first-call costs
        message(engine.graph_geodesic(start, goal))
    timer.rows, distance = [], []
    if profile is not None:
        profile.enable()
    for start, goal in asked[warm:]:
        t0 = time.perf_counter()
        result = engine.graph_geodesic(start, goal)
        t1 = time.perf_counter()
        message(result)
        timer.current["message"] += time.perf_counter() - t1
        timer.end_request(time.perf_counter() - t0)
        distance.append(result.stats.data_distance)
    if profile is not None:
        profile.disable()
    return timer.rows, distance


def summarise(rows):
    """{stage: {p50_ms, p99_ms, mean_ms}} over requests (a stage not run: 0)."""
    out = {}
    for stage in ORDER:
        values = 1e3 * np.array([row.get(stage, 0.0) for row in rows])
        out[stage] = {"p50_ms": float(np.median(values)),
                      "p99_ms": float(np.percentile(values, 99)),
                      "mean_ms": float(values.mean())}
    return out


def export_src(ref, into):
    """src/ of a git ref, unpacked under `into` (no worktree, nothing checked out)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "src"], check=True,
                             capture_output=True).stdout
    path = os.path.join(into, "archive.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into)
    return os.path.join(into, "src")


def in_process(src, model_dir, n):
    """run() in a fresh process on the package under src: (rows, data distances)."""
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), model_dir,
                          "--queries", str(n)], env=env, check=True, capture_output=True,
                         text=True).stdout
    answer = json.loads(out.strip().splitlines()[-1])
    return answer["rows"], answer["data_distance"]


def trained_model(work):
    """A 10,000-node arm model trained as section 2's, saved under work: its dir."""
    from latent_geodesics.data import arm_dataset
    from latent_geodesics.model.iwae import save_model
    from latent_geodesics.model.training import train_iwae
    arm = arm_dataset(n_demos=400, hole=True, seed=5)   # 10,000 poses
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=30, progress=False)
    model_dir = os.path.join(work, "model")
    save_model(model, model_dir, model.meta)
    return model_dir


def stages(baseline=None, queries_per_round=50, rounds=4, model_dir=None, log=print):
    """The section: this tree (and the baseline ref's, in alternating rounds) answering
    the same queries on the same model (trained here unless model_dir is given)."""
    work = tempfile.mkdtemp(prefix="bench_stages_")
    model_dir = model_dir or trained_model(work)
    trees = {"after": os.path.join(ROOT, "src")}
    if baseline:
        trees = {"before": export_src(baseline, work), **trees}
    rows, distance = defaultdict(list), defaultdict(list)
    for r in range(rounds):
        for name, src in trees.items():
            log("   stages: %s, round %d/%d" % (name, r + 1, rounds))
            got, d = in_process(src, model_dir, queries_per_round)
            rows[name] += got
            distance[name] += d
    out = {"N": len(np.load(os.path.join(model_dir, "latents.npy"))),
           "queries": queries_per_round * rounds, "baseline": baseline or ""}
    for name in trees:
        out[name] = summarise(rows[name])
        out[name]["data_distance_median"] = float(np.median(distance[name]))
        out[name]["data_distance_max"] = float(np.max(distance[name]))
    if baseline:   # the same queries: how far each served motion's distance moved
        out["data_distance_largest_change"] = float(np.max(np.abs(
            np.array(distance["after"]) - np.array(distance["before"]))))
    return out


def report_lines(r):
    trees = [name for name in ("before", "after") if name in r]
    md = ["", "## 14. Stages of a served ~graph_geodesic (in-process, N = %d arm graph, "
          "data-aware metric, %d latent-endpoint queries, one torch thread)" % (r["N"],
                                                                                r["queries"]),
          "Each stage's own time per request (p50 / p99, ms); \"other\": the request's "
          "time outside the stages named. %s" % (
              "before: %s, after: this tree, alternating rounds of one run." % r["baseline"]
              if "before" in r else "This tree only."), "",
          "| stage | " + " | ".join("%s p50 | %s p99" % (t, t) for t in trees) + " |",
          "|---|" + "---|---|" * len(trees)]
    for stage in ORDER:
        md.append("| %s | " % stage + " | ".join(
            "%.2f | %.2f" % (r[t][stage]["p50_ms"], r[t][stage]["p99_ms"]) for t in trees)
            + " |")
    md += ["", "Served motions' largest distance to the recorded poses (median over "
           "queries, rad): " + ", ".join("%s %.4f" % (t, r[t]["data_distance_median"])
                                         for t in trees) + "." + (
              " Largest change of one query's: %.2g rad." % r["data_distance_largest_change"]
              if "data_distance_largest_change" in r else "")]
    return md


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--profile", action="store_true", help="cProfile the timed queries")
    p.add_argument("--baseline", metavar="REF",
                   help="compare with this git ref's src/ (alternating rounds): a table")
    args = p.parse_args(argv)
    if args.baseline:
        print("\n".join(report_lines(stages(args.baseline, args.queries, 4, args.model_dir))))
        return
    profile = None
    if args.profile:
        import cProfile
        profile = cProfile.Profile()
    rows, distance = run(args.model_dir, args.queries, profile=profile)
    if profile is not None:
        import pstats
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    print(json.dumps({"rows": rows, "data_distance": distance}))


if __name__ == "__main__":
    main(sys.argv[1:])
