"""Section 12: does the served motion follow the demonstrations?

Three data sets, each with pose pairs whose demonstrated motion between them is
known: the six curved skills (two poses of one skill a quarter to half a cycle
apart), the recorded laikago gait (two frames 200-400 apart, the recording
between them), and the simulated arm (a reach's start and its target, the
demonstration itself; reaches lifted over the box, whose joint straight line
strays more than 0.1 rad from them: a straight reach is its own chord). Models
are trained as a user would, with train_iwae's defaults (--latent-dim auto);
motions come from the server's own core (Engine, in-process) at its defaults.
Per motion: the largest distance of its points from the demonstrated motion (rad),
median over the pairs, side by side:

    served     ~graph_geodesic (data-aware metric, the default)
    refined    ~nn_geodesic at its defaults
    node path  A*'s own node path (shorten=False), decoded densely, residuals carried
    latent     the straight latent line, decoded
    chord      the joint-space straight line
    mean       ~graph_geodesic with metric: mean (the decoder mean alone: before)

Also the served geodesic's length over the straight latent line's under the
metric, and the in-process graph and refinement p50.
"""
import tempfile
import time

import numpy as np

from latent_geodesics.data import arm_dataset, laikago_dataset
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.training import train_auto_latent
from latent_geodesics.serving.engine import Engine, Settings
from latent_geodesics.serving.fidelity import chord, largest_deviation
from latent_geodesics.serving.planning import dense_positions
from latent_geodesics.sim.skills import curved_pairs, curved_skills

MOTIONS = ("served", "refined", "node_path", "latent", "chord", "mean")


def curved_case():
    skills = curved_skills()
    pairs = [(a, b, skills.motion(skills.skills[a], pa, pb, 400))
             for a, b, pa, pb in curved_pairs(skills, 24)]
    return "curved skills", skills.data, skills.joint_names, pairs


def laikago_case(n=24, seed=0):
    data, names = laikago_dataset()
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):   # past the first frames, which stand still
        a = int(rng.integers(200, len(data) - 400))
        b = a + int(rng.integers(200, 401))
        pairs.append((a, b, data[a:b + 1]))
    return "laikago", data, names, pairs


def arm_case(n=24, curve=0.1):
    """Reaches that curve (lifted over the box): a straight reach is its own chord."""
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    starts = np.r_[0, np.cumsum([len(d) for d in arm.demos])[:-1]]
    pairs = [(int(s), int(s) + len(d) - 1, d) for s, d in zip(starts, arm.demos)
             if largest_deviation(chord(d[0], d[-1]), d) > curve]
    return "simulated arm", arm.data, arm.joint_names, pairs[:n]


def decoded_path(engine, points, qs, qg):
    """A latent polyline as the server would decode it (dense, residuals carried)."""
    return dense_positions(engine.served, engine.settings, points, qs, qg)[1]


_TRAINED = {}


def trained(name, data, names, log=print):
    """(model, report, directory) of one data set, trained with train_iwae's defaults
    (latent dim auto) once per run: sections 12 and 13 share the models."""
    if name not in _TRAINED:
        model, report = train_auto_latent(data, names, device="cpu", progress=False, log=log)
        directory = tempfile.mkdtemp(prefix="bench_follows_")
        save_model(model, directory, model.meta)
        _TRAINED[name] = model, report, directory
    return _TRAINED[name]


def evaluate(name, data, names, pairs, log=print):
    model, report, directory = trained(name, data, names, log)
    quiet = dict(log=lambda m: None)
    engine = Engine(directory, Settings(device="cpu", graph_cache=False), **quiet)
    mean = Engine(directory, Settings(device="cpu", graph_cache=False, metric="mean"), **quiet)
    served = engine.served
    rows, graph_s, refine_s, ratios = [], [], [], []
    for a, b, truth in pairs:
        qs, qg = data[a], data[b]
        start, goal = (names, qs, []), (names, qg, [])
        try:
            t0 = time.perf_counter()
            g = engine.graph_geodesic(start, goal)
            t1 = time.perf_counter()
            r = engine.nn_geodesic(start, goal)
            t2 = time.perf_counter()
        except Exception as e:   # a refused pose is reported, not hidden
            rows.append({"pair": [a, b], "refused": str(e)})
            continue
        graph_s.append(t1 - t0)
        refine_s.append(t2 - t1)
        ratios.append(g.length / g.straight_line_length)
        zs, zg = g.latent[0], g.latent[-1]
        raw = served.graph.shortest_path(zs, zg, shorten=False).points
        motions = {"served": g.positions, "refined": r.positions,
                   "node_path": decoded_path(engine, raw, qs, qg),
                   "latent": decoded_path(engine, np.stack([zs, zg]), qs, qg),
                   "chord": chord(qs, qg), "mean": mean.graph_geodesic(start, goal).positions}
        rows.append({"pair": [a, b], **{k: largest_deviation(m, truth)
                                        for k, m in motions.items()},
                     "data_distance": g.stats.data_distance,
                     "chord_data_distance": g.stats.chord_data_distance})
    done = [r for r in rows if "refused" not in r]
    summary = {k: float(np.median([r[k] for r in done])) for k in MOTIONS}
    summary.update(name=name, latent_dim=model.z_dim, pairs=len(done),
                   refused=len(rows) - len(done),
                   held_out_rmse=report.held_out.rmse,
                   length_ratio=float(np.median(ratios)),
                   graph_p50_ms=1e3 * float(np.median(graph_s)),
                   refine_p50_ms=1e3 * float(np.median(refine_s)))
    summary["served_over_chord"] = summary["served"] / summary["chord"]
    summary["served_over_node_path"] = summary["served"] / summary["node_path"]
    summary["refined_over_chord"] = summary["refined"] / summary["chord"]
    summary["refined_over_node_path"] = summary["refined"] / summary["node_path"]
    return {"summary": summary, "rows": rows}


def follows(log=print):
    return [evaluate(*case(), log=log) for case in (curved_case, laikago_case, arm_case)]


def report_lines(results):
    md = ["", "## 12. Does the served motion follow the demonstrations?", "",
          "Largest distance (rad) of a motion's points from the demonstrated motion between "
          "two recorded poses, median over the pairs; models trained with train_iwae's "
          "defaults (latent dim auto), motions from the server's core at its defaults. "
          "served = ~graph_geodesic (data-aware metric), refined = ~nn_geodesic, node path = "
          "A*'s own path, latent = the straight latent line, chord = the joint straight "
          "line, mean = ~graph_geodesic with metric: mean (the decoder mean alone). Targets: "
          "curved skills served and refined <= 0.3 x chord and <= 2 x node path; laikago and "
          "the arm <= 1.2 x node path and < chord.", "",
          "| data (latent dim, pairs) | served | refined | node path | latent | chord | mean "
          "| served / chord | served / node path | refined / node path | length / straight "
          "latent | graph p50 | refine p50 |", "|" + "---|" * 13]
    for case in results["follows"]:
        s = case["summary"]
        md.append("| %s (%d, %d%s) | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | "
                  "%.2f | %.3f | %.1f ms | %.1f ms |" % (
                      s["name"], s["latent_dim"], s["pairs"],
                      ", %d refused" % s["refused"] if s["refused"] else "", s["served"],
                      s["refined"], s["node_path"], s["latent"], s["chord"], s["mean"],
                      s["served_over_chord"], s["served_over_node_path"],
                      s["refined_over_node_path"], s["length_ratio"], s["graph_p50_ms"],
                      s["refine_p50_ms"]))
    return md
