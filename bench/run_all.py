#!/usr/bin/env python3
"""Benchmarks: every figure is a ratio against a baseline measured in the same run.

Writes bench/results/bench.md and bench/results/bench.json. Sections:
  1 graph build vs the decoding floor      4 straight vs graph vs refined lengths
  1b edge deduplication at N = 1M, numpy 1 and 2 (dedup_speed.py)
  2 graph search on N = 10,000 vs A*        5 MF on a 256 x 256 grid: batched vs loop
  3 refinements vs stochman 0.3.0           6 ROS round trip and start-up (ros_round_trip.py)
  7 active learning vs random queries (active_learning_eval.py)
  8 geodesic quality and executable trajectories, arm and laikago (geodesic_quality.py)

  9 training speed at equal quality, previous vs today's defaults (training_speed.py)
 10 the IROS 2018 experiments: pendulum images, arm with two skills, two arcs
    (gap_experiments.py)
 11 the speed issue's table: training, graph build to 1M, refinement, MF (speed_table.py)
 12 does the served motion follow the demonstrations? curved skills, laikago, arm
    (follows.py)
 13 the robot's world: collisions, answers and the demonstrations with objects in the
    scene, ours vs the soft metric; latency with 10 objects (world.py)
 14 every stage of a served ~graph_geodesic, p50/p99, N = 10,000 arm graph (stages.py)

    python bench/run_all.py            all sections
    python bench/run_all.py ros al     only these (others kept from bench.json)
    python bench/run_all.py --device cuda core train   on a GPU: bench-cuda.md beside
    python bench/run_all.py stages --baseline REF   stages before (git ref) and after
    sections: SECTIONS below; an unknown name is refused
"""
import argparse
import functools
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from latent_geodesics.data import arm_dataset, laikago_dataset
from latent_geodesics.geometry.metric import (
    curve_length,
    decoder_device_dtype,
    magnification_factor,
)
from latent_geodesics.geometry.refinement import nn_geodesic, refined_geodesic
from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.learning.evaluation import hole_crossing_pairs
from latent_geodesics.model.iwae import IWAE
from latent_geodesics.model.loading import metric_decoder
from latent_geodesics.model.training import train_iwae

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def iwae_decoder(nz, device, seed=0):
    """An IWAE-sized decoder (Nz -> 128 -> 128 -> 7 joints), weights as initialised."""
    torch.manual_seed(seed)
    return IWAE(7, nz).to(device).eval().requires_grad_(False)


def graph_build(device, sizes=(1000, 10000, 50000), dims=(2, 8)):
    rows = []
    for nz in dims:
        decoder = iwae_decoder(nz, device)
        for n in sizes:
            nodes = np.random.default_rng(0).normal(size=(n, nz))
            reps = 3 if n <= 10000 else 1   # best of 3 where a run takes milliseconds
            graph, build = timed(LatentGraph, decoder, nodes, k=10, n_samples=10)
            build = min([build] + [timed(LatentGraph, decoder, nodes, k=10, n_samples=10)[1]
                                   for _ in range(reps - 1)])
            points = torch.randn(len(graph.edges) * 8 + n, nz, device=device)
            with torch.no_grad():
                floor = min(timed(decoder, points)[1] for _ in range(reps))
            rows.append({"N": n, "Nz": nz, "edges": len(graph.edges), "build_s": build,
                         "decode_floor_s": floor, "ratio": build / floor})
    return rows


def search_graphs(device, n=10000):
    """The two N = 10,000 graphs the search is timed on: a trained arm model's under
    the data-aware metric (what the server searches), and a plain MLP decoder's
    over random 2-D latents."""
    arm = arm_dataset(n_demos=400, hole=True, seed=5)   # 10,000 poses
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=30, device=device, progress=False)
    yield "arm, data-aware metric", LatentGraph(metric_decoder(model), model.latents, k=10,
                                                n_samples=10)
    nodes = np.random.default_rng(0).normal(size=(n, 2))
    yield "plain MLP decoder", LatentGraph(iwae_decoder(2, device), nodes, k=10, n_samples=10)


def search_timing(name, graph, queries):
    """Node-to-node queries: the served search against the Python A* reference (both
    shorten=False; lengths asserted equal) and the served pipeline (shorten=True).
    Untimed first: the landmarks (built on the first query) and 50 other queries
    (the served search sizes its first bound from the graph's recent queries)."""
    n = len(graph.nodes)
    landmarks = timed(graph.search.landmarks)[1]
    warm = np.random.default_rng(2)
    for _ in range(50):
        i, j = warm.choice(n, 2, replace=False)
        graph.shortest_path(graph.nodes[i], graph.nodes[j], shorten=False)
    rng = np.random.default_rng(1)
    pairs = [graph.nodes[rng.choice(n, 2, replace=False)] for _ in range(queries)]
    times = {"search": [], "astar": []}
    settled = {"search": [], "astar": []}
    for a, b in pairs:
        path, t = timed(graph.shortest_path, a, b, shorten=False)
        ref, t_ref = timed(graph.shortest_path, a, b, method="astar", shorten=False)
        assert abs(path.length - ref.length) <= 1e-9 * ref.length
        times["search"].append(t), times["astar"].append(t_ref)
        settled["search"].append(path.stats.nodes_expanded)
        settled["astar"].append(ref.stats.nodes_expanded)
    # A pass of its own: torch's worker threads, busy a while after each decode,
    # would otherwise share the two searches' cores.
    times["served"] = [timed(graph.shortest_path, a, b)[1] for a, b in pairs]
    row = {"graph": name, "N": n, "queries": queries, "landmarks_s": landmarks}
    for key, values in times.items():
        row[key + "_p50_ms"] = 1e3 * float(np.median(values))
        row[key + "_p99_ms"] = 1e3 * float(np.percentile(values, 99))
    for key, values in settled.items():
        row[key + "_settled_mean"] = float(np.mean(values))
        row[key + "_settled_p50"] = float(np.median(values))
    return row


def astar(device, queries=300):
    """Section 2: the served search against the A* reference on both graphs."""
    return {"graphs": [search_timing(name, graph, queries)
                       for name, graph in search_graphs(device)]}


def stochman_geodesic(decoder, za, zb):
    from stochman.curves import CubicSpline
    from stochman.geodesic import geodesic_minimizing_energy
    from stochman.manifold import EmbeddedManifold

    class Decoded(EmbeddedManifold):
        def embed(self, c, jacobian=False):
            return decoder(c.reshape(-1, c.shape[-1])).reshape(*c.shape[:-1], -1)

    device = decoder_device_dtype(decoder)[0]
    begin = torch.as_tensor(za, dtype=torch.float32, device=device)[None]
    end = torch.as_tensor(zb, dtype=torch.float32, device=device)[None]
    curve = CubicSpline(begin, end, num_nodes=8)
    start = time.perf_counter()
    geodesic_minimizing_energy(curve, Decoded(), max_iter=500, eval_grid=20)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        dense = curve(torch.linspace(0, 1, 400, device=device)).reshape(-1, begin.shape[1])
        return float(curve_length(decoder, dense)), elapsed


def nn_vs_stochman(model, graph, pairs):
    rows = []
    z = model.latents
    i, j = pairs[0]   # warm-up: neither side pays torch's first-call costs in the table
    stochman_geodesic(model, z[i], z[j])
    nn_geodesic(model, z[i], z[j], max_iterations=20)
    refined_geodesic(graph, z[i], z[j])
    for i, j in pairs:
        row = {"pair": [i, j]}
        row["stochman_length"], row["stochman_s"] = stochman_geodesic(model, z[i], z[j])
        start = time.perf_counter()
        fast = refined_geodesic(graph, z[i], z[j])   # the server's default: graph + polyline
        row["polyline/graph_s"] = time.perf_counter() - start
        row["polyline/graph_length"] = graph.measure(fast.points)
        for mode in ("finite-difference", "jacobian"):
            for init in ("straight", "graph"):
                start = time.perf_counter()
                coarse = graph.shortest_path(z[i], z[j]) if init == "graph" else None
                path = nn_geodesic(model, z[i], z[j], init=coarse, mode=mode)
                elapsed = time.perf_counter() - start
                key = "%s/%s" % (mode, init)
                row[key + "_length"] = graph.measure(path.points)
                row[key + "_s"] = elapsed
        rows.append(row)
    return rows


def lengths(model, graph, pairs, name):
    rows = []
    z = model.latents
    for i, j in pairs:
        straight = graph.measure(np.stack([z[i], z[j]]))
        raw = graph.shortest_path(z[i], z[j], shorten=False)
        coarse = graph.shortest_path(z[i], z[j])
        fine = refined_geodesic(graph, z[i], z[j])
        rows.append({"data": name, "pair": [i, j], "straight": straight,
                     "raw_graph": graph.measure(raw.points), "graph": coarse.length,
                     "refined": fine.length})
    return rows


def mf_grid(model, loop_points=300):
    g = torch.linspace(-2, 2, 256, device=model.device)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    _, batched = timed(magnification_factor, model, grid)

    def per_point():
        out = []
        for z in grid[:loop_points]:
            J = torch.autograd.functional.jacobian(lambda p: model(p[None])[0], z)
            out.append(torch.sqrt(torch.det(J.T @ J)))
        return torch.stack(out)

    loop_values, loop = timed(per_point)
    assert torch.allclose(loop_values, magnification_factor(model, grid[:loop_points]),
                          rtol=1e-3, atol=1e-6)
    loop_full = loop * len(grid) / loop_points
    return {"points": len(grid), "batched_s": batched, "loop_s_extrapolated": loop_full,
            "loop_points_timed": loop_points, "speedup": loop_full / batched}


@functools.lru_cache(maxsize=1)
def trained_models(device):
    """The arm and laikago models every section uses, trained once per run."""
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    arm_model, _ = train_iwae(arm.data, arm.joint_names, device=device, progress=False)
    data, names = laikago_dataset()
    laikago_model, _ = train_iwae(data, names, epochs=60, device=device, progress=False)
    return arm_model, laikago_model


def table(rows, columns, fmt):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt[c](r) if c in fmt else str(r[c]) for c in columns)
                     + " |")
    return lines


def active_learning_report(al):
    sm = al["summary"]
    dim = al.get("latent_dim", 2)
    md = ["", "## 7%s. Active learning (MF + uncertainty) vs random queries, simulated arm, "
          "%d-D latent space" % ("" if dim == 2 else "b", dim),
          "%d seeds (%s), %d rounds x %d queries, fine-tuning %d epochs per round. "
          "Smoothness = largest joint step / mean step along the decoded graph geodesics "
          "between held-out pose pairs across the hole (1 = even). Figure: %s."
          % (len(al["seeds"]), ", ".join(map(str, al["seeds"])), al["rounds"],
             al["queries_per_round"], al["epochs_per_round"],
             "active_learning.png" if dim == 2 else "active_learning_%dd.png" % dim), "",
           "| round | active smoothness | random smoothness | active RMSE | random RMSE |",
           "|---|---|---|---|---|"]
    for r, (a, b, c, d) in enumerate(zip(sm["active_curve"], sm["random_curve"],
                                         sm["active_rmse"], sm["random_rmse"])):
        md.append("| %d | %.3f | %.3f | %.4f | %.4f |" % (r, a, b, c, d))
    needed = sm["active_demos_to_reach_random_final"]
    if not sm["random_improved"]:
        verdict = ("random selection did not improve smoothness (%.3f at the start, %.3f "
                   "after %.0f demonstrations); the active learner ended at %.3f after %.0f, "
                   "so the target (random's final level with half the demonstrations) "
                   "measures nothing here" % (sm["initial_smoothness"],
                                              sm["random_final_smoothness"],
                                              sm["random_demos_at_end"],
                                              sm["active_final_smoothness"],
                                              sm["active_demos_at_end"]))
    elif needed is None:
        verdict = ("random selection ends at %.3f; the active learner does not reach it "
                   "within the budget" % sm["random_final_smoothness"])
    else:
        verdict = ("random selection ends at %.3f after %.0f demonstrations; the active "
                   "learner reaches it after %.1f (ratio %.2f; target <= 0.5)"
                   % (sm["random_final_smoothness"], sm["random_demos_at_end"], needed,
                      sm["demo_ratio"]))
    md += ["", "Result: " + verdict + ". Per-seed curves are in bench.json."]
    return md


def report(results):
    md = ["# Benchmarks", "", "Machine: %s, %d CPU threads, torch %s, device %s." % (
        platform.machine(), torch.get_num_threads(), torch.__version__, results["device"]), ""]
    for lines in (graph_build_lines, search_lines, stochman_lines, lengths_lines, mf_lines,
                  ros_lines, active_learning_lines, hole_lines, module_lines):
        md += lines(results)
    return "\n".join(md) + "\n"


def f3(key):
    return lambda r: "%.3f" % r[key]


def graph_build_lines(results):
    md = ["## 1. Graph build (k = 10, n = 10) vs decoding the same points in one batch",
          "Target: ratio <= 1.5. Best of 3 runs for N <= 10,000.", ""]
    md += table(results["graph_build"], ["N", "Nz", "edges", "build_s", "decode_floor_s", "ratio"],
                {"build_s": f3("build_s"), "decode_floor_s": f3("decode_floor_s"),
                 "ratio": f3("ratio")})
    if "dedup" in results:
        from dedup_speed import report_lines as dedup_lines
        md += dedup_lines(results["dedup"])
    return md


def search_lines(results):
    rows = results["astar"]["graphs"]
    md = ["", "## 2. Graph search on N = 10,000 graphs (%d node-to-node queries each)"
          % rows[0]["queries"],
          "The served search (A* with landmark lower bounds, compiled by numba) against "
          "the Python A* reference (decoded-distance heuristic; same lengths, asserted). "
          "Raw node paths (shorten=False); the served graph geodesic adds shortcuts and "
          "the candidates. Nodes settled: expanded. Target: search p50 <= 1 ms and "
          "below A*'s on both.", "",
          "| graph | search p50 | search p99 | A* p50 | A* p99 | nodes settled search / A* "
          "(mean) | served p50 | landmarks (once) |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.0f / %.0f | %.1f ms | %.2f s |"
                  % (r["graph"], r["search_p50_ms"], r["search_p99_ms"], r["astar_p50_ms"],
                     r["astar_p99_ms"], r["search_settled_mean"], r["astar_settled_mean"],
                     r["served_p50_ms"], r["landmarks_s"]))
    return md


def stochman_lines(results):
    md = ["", "## 3. NN geodesics vs stochman 0.3.0 (trained arm IWAE, hole-crossing pairs)",
          "stochman: EmbeddedManifold over the same decoder, CubicSpline (8 nodes), "
          "geodesic_minimizing_energy (Adam, max_iter 500, eval_grid 20). Lengths re-measured "
          "densely with our curve_length. Target: graph-initialised refinement <= stochman's "
          "length in <= 1/5 of its time.", ""]
    cols = ["pair", "stochman", "polyline/graph"] + [
        "%s/%s" % (m, i) for m in ("finite-difference", "jacobian") for i in ("straight", "graph")]
    md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results["nn_vs_stochman"]:
        cells = ["%d-%d" % tuple(r["pair"]),
                 "%.4f (%.2f s)" % (r["stochman_length"], r["stochman_s"])]
        cells += ["%.4f (%.2f s)" % (r[c + "_length"], r[c + "_s"]) for c in cols[2:]]
        md.append("| " + " | ".join(cells) + " |")
    s = results["nn_summary"]
    return md + ["", "Vs stochman, mean over pairs (length ratio, time ratio): the default "
                 "refinement (graph + polyline relaxation) %.3f, %.3f (target <= 1, <= 0.1); "
                 "graph-initialised finite-difference NN %.3f, %.3f." % (
                     s["polyline_length_ratio"], s["polyline_time_ratio"], s["length_ratio"],
                     s["time_ratio"])]


def lengths_lines(results):
    md = ["", "## 4. Straight line vs graph vs refined (decoded lengths, radians)", ""]
    md += ["Hole-crossing pairs; all lengths under one measure (graph.measure). raw graph = "
           "the A* node path; graph = the served graph geodesic (shortcut, relaxed, straight "
           "line as a candidate); refined = the default ~nn_geodesic.", ""]
    return md + table(results["lengths"],
                      ["data", "pair", "straight", "raw_graph", "graph", "refined"],
                      {"pair": lambda r: "%d-%d" % tuple(r["pair"]), "straight": f3("straight"),
                       "raw_graph": f3("raw_graph"), "graph": f3("graph"),
                       "refined": f3("refined")})


def mf_lines(results):
    m = results["mf_grid"]
    return ["", "## 5. Magnification factor on a 256 x 256 grid", "",
            "Batched (torch.func, chunked): %.3f s; per-point autograd loop: %.1f s "
            "(timed on %d points, extrapolated); speed-up %.0fx."
            % (m["batched_s"], m["loop_s_extrapolated"], m["loop_points_timed"], m["speedup"])]


def ros_lines(results):
    if "ros" not in results:
        return []
    r = results["ros"]
    refine = ["%.1f ms" % r[k] if k in r else "-"
              for k in ("refine_ros_p50_ms", "refine_ros_p99_ms")]
    return ["", "## 6. ROS round trip (~graph_geodesic, N = %d graph)" % r["N"], "",
            "| | p50 | p99 |", "|---|---|---|",
            "| persistent rospy.ServiceProxy | %.2f ms | %.2f ms |" % (r["ros_p50_ms"],
                                                                    r["ros_p99_ms"]),
            "| in-process Engine.graph_geodesic | %.2f ms | %.2f ms |" % (
                r["inproc_p50_ms"], r["inproc_p99_ms"]),
            "| ~nn_geodesic action (default refinement) | %s | %s |" % tuple(refine),
            "", "Round trip / in-process (p50): %.2f. Node start-up until its services "
            "answer: %.1f s without the graph cache, %.1f s with it (ratio %.2f)."
            % (r["ros_p50_ms"] / r["inproc_p50_ms"], r["startup_no_cache_s"],
               r["startup_cache_s"], r["startup_cache_s"] / r["startup_no_cache_s"])]


def active_learning_lines(results):
    return [line for key in ("active_learning", "active_learning_3d") if key in results
            for line in active_learning_report(results[key])]


def hole_lines(results):
    if "hole_visibility" not in results:
        return []
    h = results["hole_visibility"]
    return ["", "Where the initial model puts the hole (%d held-out goal poses with targets "
            "in the hole band, medians): latent distance to the nearest training datum %.3f "
            "(graph neighbour reach %.3f; poses outside the hole: %.3f); largest joint "
            "reconstruction error %.2f rad (outside the hole: %.2f rad)."
            % (h["n_hole_poses"], h["hole_latent_distance"], h["reach"],
               h["outside_latent_distance"], h["hole_max_joint_error"],
               h["outside_max_joint_error"])]


def module_lines(results):
    """Sections whose report lives in their own bench module."""
    md = []
    if "quality" in results:
        from geodesic_quality import report_lines
        md += report_lines(results)
    for key in ("training_speed", "training_speed_laikago"):
        if key in results:
            from training_speed import report_lines as training_lines
            md += training_lines(results[key])
    if any(key in results for key in ("gap_arm", "gap_pendulum", "gap_arcs")):
        from gap_experiments import report_lines as gap_lines
        md += gap_lines(results)
    if "speed_table" in results:
        from speed_table import report_lines as speed_lines
        md += speed_lines(results["speed_table"])
    if "follows" in results:
        from follows import report_lines as follows_lines
        md += follows_lines(results)
    if "world" in results:
        from world import report_lines as world_lines
        md += world_lines(results)
    if "stages" in results:
        from stages import report_lines as stages_lines
        md += stages_lines(results["stages"])
    return md


def core_sections(results, device):
    """Sections 1-5: graph build, search, refinements, lengths, MF."""
    results["graph_build"] = graph_build(device)
    print("   2. graph search", flush=True)
    results["astar"] = astar(device)
    print("   training the arm and laikago models", flush=True)
    arm_model, laikago_model = trained_models(device)
    arm_graph = LatentGraph(arm_model, arm_model.latents, k=10, n_samples=10)
    arm_pairs = hole_crossing_pairs(arm_model.latents, n_pairs=5)
    print("   3. NN vs stochman", flush=True)
    results["nn_vs_stochman"] = rows = nn_vs_stochman(arm_model, arm_graph, arm_pairs)
    results["nn_summary"] = {
        "length_ratio": float(np.mean([r["finite-difference/graph_length"] / r["stochman_length"]
                                       for r in rows])),
        "time_ratio": float(np.mean([r["finite-difference/graph_s"] / r["stochman_s"]
                                     for r in rows])),
        "polyline_length_ratio": float(np.mean([r["polyline/graph_length"] / r["stochman_length"]
                                                for r in rows])),
        "polyline_time_ratio": float(np.mean([r["polyline/graph_s"] / r["stochman_s"]
                                              for r in rows]))}
    print("   4. lengths", flush=True)
    laikago_graph = LatentGraph(laikago_model, laikago_model.latents, k=10, n_samples=10)
    results["lengths"] = (lengths(arm_model, arm_graph, arm_pairs, "simulated arm")
                          + lengths(laikago_model, laikago_graph,
                                    hole_crossing_pairs(laikago_model.latents, 5), "laikago"))
    print("   5. MF grid", flush=True)
    results["mf_grid"] = mf_grid(arm_model)


def dedup_section(results, device):
    from dedup_speed import dedup_speed
    results["dedup"] = dedup_speed()


def ros_section(results, device):
    from ros_round_trip import ros_round_trip
    results["ros"] = ros_round_trip(RESULTS)


def al_section(results, device, latent_dim=2):
    from active_learning_eval import active_learning_eval, hole_visibility
    key = "active_learning" if latent_dim == 2 else "active_learning_3d"
    results[key] = active_learning_eval(RESULTS, latent_dim=latent_dim)
    results["hole_visibility"] = hole_visibility()


def quality_section(results, device):
    from geodesic_quality import evaluate, lazy_astar
    arm_model, laikago_model = trained_models(device)
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    results["quality"] = [evaluate("simulated arm", arm_model, arm.data),
                          evaluate("laikago", laikago_model, laikago_dataset()[0])]
    results["lazy_astar"] = lazy_astar()


def train_section(results, device):
    from training_speed import training_speed
    results["training_speed"] = training_speed(device)
    results["training_speed_laikago"] = training_speed(device, (0, 1, 2), "laikago")


def speed_section(results, device):
    from speed_table import speed_table
    results["speed_table"] = speed_table(device)


def follows_section(results, device):
    from follows import follows
    results["follows"] = follows()


def stages_section(results, device):
    from stages import stages
    results["stages"] = stages(results.get("stages_baseline") or None)


def world_section(results, device, parts=None):
    from world import PARTS, world
    world(results, parts or tuple(PARTS))


def gap_section(results, device):
    from gap_experiments import gap_experiments
    results.update(gap_experiments(RESULTS))


def hole_section(results, device):
    from active_learning_eval import hole_visibility
    results["hole_visibility"] = hole_visibility()


# name -> (title, run(results, device)), in the order a full run takes them.
SECTIONS = {
    "core": ("1-5 graph build, search, refinements vs stochman, lengths, MF", core_sections),
    "astar": ("2 graph search on two N = 10,000 graphs",
              lambda results, device: results.update(astar=astar(device))),
    "dedup": ("1b edge deduplication at N = 1M, fresh processes", dedup_section),
    "ros": ("6 ROS round trip", ros_section),
    "al": ("7 active learning vs random", al_section),
    "al3": ("7b active learning vs random, 3-D latent space",
            lambda results, device: al_section(results, device, latent_dim=3)),
    "quality": ("8 geodesic quality and trajectories (arm, laikago)", quality_section),
    "train": ("9 training speed, previous vs today's defaults", train_section),
    "speed": ("11 the speed table", speed_section),
    "follows": ("12 does the served motion follow the demonstrations?", follows_section),
    "gap": ("10 the IROS 2018 experiments (pendulum images, arm two skills, two arcs)",
            gap_section),
    "hole": ("7c how visible the hole is", hole_section),
    "stages": ("14 every stage of a served graph geodesic (before/after with --baseline)",
               stages_section),
    "world": ("13 the robot's world (arm, Panda skills, latency)", world_section),
    "world-arm": ("13 the robot's world: the simulated arm",
                  lambda results, device: world_section(results, device, ("arm",))),
    "world-panda": ("13 the robot's world: the Panda's curved skills",
                    lambda results, device: world_section(results, device, ("panda",))),
    "world-latency": ("13 the robot's world: latency with 10 objects",
                      lambda results, device: world_section(results, device, ("latency",))),
}
# core has astar; world has its parts
FULL_RUN = [name for name in SECTIONS
            if name not in ("astar", "hole") and not name.startswith("world-")]


def main(sections, device="cpu", baseline=None):
    device = torch.device(device)
    os.makedirs(RESULTS, exist_ok=True)
    torch.manual_seed(0)
    name = "bench" if device.type == "cpu" else "bench-" + device.type
    path = os.path.join(RESULTS, name + ".json")
    results = {"device": str(device)}
    if sections and os.path.isfile(path):
        with open(path) as f:
            results = json.load(f)
    results["stages_baseline"] = baseline or ""   # the stages section's "before" ref
    chosen = sections or FULL_RUN
    for number, section in enumerate(chosen, 1):
        title, run = SECTIONS[section]
        print("%d/%d %s" % (number, len(chosen), title), flush=True)
        run(results, device)
    for key in ("active_learning", "active_learning_3d"):   # summaries derive from the runs
        if key in results:
            from active_learning_eval import summarise
            al = results[key]
            al["summary"] = summarise(al["runs"], al["rounds"] * al["queries_per_round"])
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    text = report(results)
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(text)
    print(text)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Benchmarks; results under bench/results/.")
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help="only these (others kept from bench.json): " + ", ".join(SECTIONS))
    p.add_argument("--device", default="cpu", help="cpu or cuda: bench-cuda.md beside")
    p.add_argument("--baseline", metavar="REF", help="the stages section's before: a git ref")
    args = p.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:   # (argparse's choices refuses an empty list of sections)
        p.error("unknown sections %s; the sections are %s" % (unknown, ", ".join(SECTIONS)))
    return args


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    args = parse_args(sys.argv[1:])
    main(args.sections, args.device, args.baseline)
