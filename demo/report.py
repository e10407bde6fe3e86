"""The demo's report: checks (each with its threshold and its advice), the model, the
geodesics and the active-learning rounds, as report.md and report.json."""
import json
import os
from dataclasses import dataclass

import numpy as np

from demo.client import ROBOT_PIXELS
from latent_geodesics.files import atomic_write
from latent_geodesics.model.training import NOISE_FACTOR, NOISE_FLOOR_RAD


def _learned(diagnosis, latent_dim):
    from latent_geodesics.model.training import collapse_warning
    if not diagnosis:
        return "not diagnosed"
    verdict = "FAIL" if diagnosis["collapsed"] else "pass"
    return "%s: held-out RMSE is %.0f %% of predicting the mean pose (fail above 90 %%); " \
        "%d of %d latent dimensions in use%s" % (
            verdict, 100 * diagnosis["rmse_ratio"], diagnosis["active_latent_dims"], latent_dim,
            ("; " + collapse_warning(diagnosis, latent_dim)) if diagnosis["collapsed"] else "")


def worst(results, key):
    return max(r[key] for r in results)


@dataclass(frozen=True)
class Check:
    """One line of the report: what is measured, against what, and what to do if not."""
    title: str
    measured: str
    threshold: str
    ok: bool
    advice: str

    def row(self):
        return (self.title, self.measured, self.threshold, "pass" if self.ok else "WARN")


def verdicts(model, graph, services, results, rounds):
    """The checks a robotics user acts on."""
    held = model.meta.get("report", {}).get("held_out", {})
    diagnosis = model.meta.get("report", {}).get("diagnosis")
    noise = model.meta.get("report", {}).get("data_noise", np.nan)
    spacing = graph.step * (graph.n_samples - 1)   # median k-th neighbour distance
    data_spacing = results[0]["data_spacing"]
    closer = max(r["data_distance"] / r["chord_data_distance"] for r in results)
    refine_ms = np.median([r["refine_round_trip_ms"] for r in results])
    checks = [
        Check("the model learned (not collapsed)", _learned(diagnosis, model.z_dim).split(":")[0],
              "held-out RMSE < 90 % of predicting the mean",
              bool(diagnosis and not diagnosis["collapsed"]),
              "retrain (train_iwae --warmup, more epochs)"),
        Check("held-out reconstruction RMSE", "%.3f rad" % held.get("rmse", np.nan),
              "<= 0.10 rad", held.get("rmse", np.inf) <= 0.10,
              "more epochs, a larger --latent-dim or more data"),
        Check("held-out RMSE against the data's own noise", "%.1f x (noise %.4f rad)" % (
            held.get("rmse", np.nan) / noise, noise),
              "<= %g x max(noise, %g rad)" % (NOISE_FACTOR, NOISE_FLOOR_RAD),
              held.get("rmse", np.inf) <= NOISE_FACTOR * max(noise, NOISE_FLOOR_RAD),
              "the model does not follow the demonstrations closely: train_iwae --latent-dim "
              "auto, more epochs"),
        Check("worst joint reconstruction error", "%.3f rad" % held.get("max_abs_error", np.nan),
              "<= 0.50 rad", held.get("max_abs_error", np.inf) <= 0.50,
              "demonstrations near the worst poses"),
        Check("encode(decode(z)) round trip", "%.3f latent" % services["round_trip_latent_error"],
              "<= half a neighbour spacing (%.3f)" % (0.5 * spacing),
              services["round_trip_latent_error"] <= 0.5 * spacing,
              "the encoder and decoder disagree: train longer"),
        Check("served motions follow the data: largest distance to a recorded pose (worst pair)",
              "%.3f rad (%.1f spacings)" % (worst(results, "data_distance"),
                                            worst(results, "data_distance") / data_spacing),
              "<= 0.15 rad", worst(results, "data_distance") <= 0.15,
              "a pair crosses a region no demonstration covers: demonstrate there (active "
              "learning asks for it)"),
        Check("... against the joint straight line's (worst pair's ratio)", "%.2f" % closer,
              "< 1 (closer to the data than the straight line)", closer < 1,
              "the metric lets paths cut across the data: is metric mean+variance set?"),
        Check("graph geodesic / straight latent line, data-aware metric (worst pair)",
              "%.3f" % max(r["graph_length"] / r["straight_line_length"] for r in results),
              "<= 1.0", all(r["graph_length"] <= r["straight_line_length"] * (1 + 1e-9)
                            for r in results), "see the geodesics table below"),
        Check("refined / graph geodesic (worst pair)", "%.3f" % max(
            r["refined_length"] / r["graph_length"] for r in results), "<= 1.0",
              all(r["refined_length"] <= r["graph_length"] * (1 + 1e-9) for r in results),
              "see the geodesics table below"),
        Check("trajectory ends at the requested poses",
              "%.1e rad" % worst(results, "endpoint_error"), "<= 1e-6 rad",
              worst(results, "endpoint_error") <= 1e-6, "see the geodesics table below"),
        Check("largest joint step between trajectory points",
              "%.3f rad" % worst(results, "max_joint_step"), "<= 0.05 rad (max_joint_step)",
              worst(results, "max_joint_step") <= 0.05 + 1e-9, "see the geodesics table below"),
        Check("refine round trip (median)", "%.0f ms" % refine_ms, "<= 100 ms", refine_ms <= 100,
              "a loaded machine; or lower polyline_iterations"),
        Check("rviz renders the robot on a geodesic", services.get("rviz", "not run"),
              ">= %d robot pixels in rviz.png" % ROBOT_PIXELS,
              services.get("rviz_pixels", 0) >= ROBOT_PIXELS,
              "install rviz and xvfb (make demo does); look at rviz.png")]
    return checks + world_checks(services.get("world")) + learning_checks(rounds)


WORLD_DATA_DISTANCE = 0.30   # rad the motion around the box may stray from the recorded poses


def world_checks(world):
    if not world:
        return []
    before, after = world["before"], world["after"]
    return [Check("a box where the served motion's hand passed: the blind motion hits it",
                  "clearance %.3f m" % before["clearance"], "< 0 (the check has a case)",
                  before["collides"], "the box missed the motion: see world.png"),
            Check("... with the box in the scene: served collision-free (independent check "
                  "of the URDF's geometry)", "clearance %.3f m (%s)" % (
                      after["clearance"], after["method"]), "> 0", not after["collides"],
                  "a collision was served: report it (this must never happen)"),
            Check("... and still near the demonstrations", "%.3f rad from the recorded poses"
                  % after["data_distance"], "<= %.2f rad" % WORLD_DATA_DISTANCE,
                  after["data_distance"] <= WORLD_DATA_DISTANCE,
                  "the way around leaves the data: demonstrate a way around such objects")]


def learning_checks(rounds):
    if len(rounds) < 2:
        return []
    first, last = rounds[0], rounds[-1]
    return [Check("active learning: largest joint step across the gaps, last round",
                  "%.4f rad (round 0: %.4f)" % (last["max_step"], first["max_step"]),
                  "<= round 0", last["max_step"] <= first["max_step"],
                  "more rounds or queries per round: the gap is not filled yet"),
            Check("active learning: smoothness (largest / mean step), last round",
                  "%.3f (round 0: %.3f)" % (last["smoothness"], first["smoothness"]),
                  "<= round 0", last["smoothness"] <= first["smoothness"],
                  "more rounds: the demonstrations did not yet even out the crossing")]


def write_report(model, graph, services, results, out, seconds, rounds=(), steps=()):
    """report.md (checks, model, geodesics, active learning, time) and report.json."""
    checks = verdicts(model, graph, services, results, rounds)
    warned = [c for c in checks if not c.ok]
    lines = ["# latent_geodesics demo: simulated Panda arm with a data hole", "",
             "**Summary: %d of %d checks pass.**%s" % (
                 len(checks) - len(warned), len(checks), "" if not warned else
                 " Look at: " + "; ".join("%s (%s)" % (c.title, c.advice) for c in warned)
                 + "."), "",
             "| check | measured | threshold | verdict |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % c.row() for c in checks]
    lines += model_lines(model, services) + geodesic_lines(results)
    lines += world_lines(services.get("world")) + learning_lines(rounds)
    lines += ["", "## Time", "", "| step | seconds |", "|---|---|"]
    lines += ["| %s | %.0f |" % step for step in steps]
    lines += ["| total | %.0f |" % seconds, ""]
    atomic_write(os.path.join(out, "report.md"), lambda f: f.write("\n".join(lines)), "w")
    write_json(model, services, results, out, seconds, rounds, steps, checks)


def model_lines(model, services):
    report = model.meta.get("report", {})
    held = report.get("held_out", {})
    lines = ["", "## The model", "",
             "- %s (latent dim %d, %d training poses)" % (
                 model.directory, model.z_dim, len(model.latents)),
             "- held-out IWAE bound: %.3f nats per pose (normalised units)" % held.get(
                 "iwae_bound", float("nan")),
             "- held-out reconstruction RMSE: %.4f rad (max abs error %.3f rad)" % (
                 held.get("rmse", float("nan")), held.get("max_abs_error", float("nan"))),
             "- did it learn? %s" % _learned(report.get("diagnosis"), model.z_dim),
             "- encode/decode services: %s (round-trip latent error %.2e)" % (
                 "ok" if services["encode_ok"] and services["decode_ok"] else "FAILED",
                 services["round_trip_latent_error"]), ""]
    return lines


def geodesic_lines(results):
    lines = ["## Geodesics between reaches on either side of the data hole", "",
             "Each pair: two recorded reaches whose targets lie just before and just after "
             "the band of the table that no demonstration reached. The joint-space straight "
             "line between them sweeps over that band; the served motion should stay with "
             "the recorded motions.", "",
             "| pair | served: largest / mean distance to the data | joint straight line: "
             "largest distance | joint path / chord length | lengths: straight latent, graph,"
             " refined | graph / refine round trip | start / goal offset | largest step | "
             "duration |", "|---|---|---|---|---|---|---|---|---|"]
    for k, r in enumerate(results):
        lines.append("| %d: %d-%d | %.3f rad (%.1f spacings) / %.3f graph | %.3f rad | "
                     "%.2f / %.2f rad | %.2f, %.2f, %.2f | %.1f / %.1f ms | %.3f / %.3f rad "
                     "| %.3f rad | %.2f s |" % (
                         k + 1, *r["pair"], r["data_distance"],
                         r["data_distance"] / r["data_spacing"], r["graph_data_distance"],
                         r["chord_data_distance"], r["joint_path_length"], r["chord_length"],
                         r["straight_line_length"], r["graph_length"], r["refined_length"],
                         r["graph_round_trip_ms"], r["refine_round_trip_ms"],
                         r["start_offset"], r["goal_offset"], r["max_joint_step"],
                         r["duration"]))
    lines += ["", "Distance to the data: how far the trajectory's points lie from the nearest "
              "recorded pose (rad, and in units of the recordings' typical spacing, %.3f rad); "
              "the server reports it in every response's stats (data_distance, and "
              "chord_data_distance for the joint straight line). Lengths are Riemannian "
              "lengths under the data-aware metric (the decoder's mean and a variance that "
              "grows away from the data), so a geodesic is never longer than the straight "
              "latent line under it; in joint space it is longer than the chord when the "
              "demonstrations go around." % results[0]["data_spacing"],
              "Start/goal offset: how far the model's reconstruction of each requested pose "
              "is (largest joint); it is carried along the path, so every trajectory starts "
              "and ends exactly at the requested poses.",
              "", "Figures: latent_geodesics.png (pairs labelled, o start, * goal, the data "
              "hole's poses in magenta), joint_angles.png (pair 1 along the geodesic and along "
              "the joint straight line; joint velocities against their limits), rviz.png "
              "(rviz on a virtual screen: the robot model following pair 1's trajectory, the "
              "latent path and the MF map). Trajectories: geodesics.bag."]
    return lines


def world_lines(world):
    if not world:
        return []
    before, after = world["before"], world["after"]
    return ["", "## The robot's world: a box on the way", "",
            "A %.0f cm box was put where pair 1's served motion had its hand half-way, sent as "
            "MoveIt sends objects (moveit_msgs/CollisionObject on /collision_object); the same "
            "request was then asked again. Clearance: the robot's body (every link of the "
            "URDF, sampled densely: not the spheres the server plans with) to the box."
            % (100 * world["box_size"]), "",
            "| motion | collides | smallest clearance | distance to the recorded poses | "
            "duration | method |", "|---|---|---|---|---|---|",
            "| before the box (blind to it) | %s | %.3f m | %.3f rad | %.2f s | %s |" % (
                "yes" if before["collides"] else "no", before["clearance"],
                before["data_distance"], before["duration"], before["method"]),
            "| with the box in the scene | %s | %.3f m | %.3f rad | %.2f s | %s |" % (
                "yes" if after["collides"] else "no", after["clearance"],
                after["data_distance"], after["duration"], after["method"]),
            "", "![clearance over time](world.png)", ""]


def learning_lines(rounds):
    lines = []
    if rounds:
        lines += ["", "## Active learning with the simulated demonstrator", "",
                  "| round | demonstrations (refused) | total | largest step across gaps | "
                  "smoothness | max log MF | held-out RMSE |", "|---|---|---|---|---|---|---|"]
        for r in rounds:
            lines.append("| %d | %d (%d) | %d | %.4f rad | %.3f | %.3f | %.4f |" % (
                r["round"], r["demonstrations"], r["refused"], r["total"], r["max_step"],
                r["smoothness"], r["max_log_mf"], r["held_out_rmse"]))
        lines += ["", "Round 0 is the initial model, as the learner measured it. Each round "
                  "retrains from scratch on all data (retrain: scratch, which gives a filled "
                  "gap its latent room). Largest step and smoothness (largest over mean joint "
                  "step) along the decoded geodesics between pose pairs from the data whose "
                  "straight latent line crosses the largest gaps; lower is better. Figures: "
                  "active_learning_queries.png, active_learning_metrics.png; store: "
                  "active_learning/demonstrations.db."]
    return lines


def write_json(model, services, results, out, seconds, rounds, steps, checks):
    held = model.meta.get("report", {}).get("held_out", {})
    summary = [{k: v for k, v in r.items() if k not in ("graph_path", "refined_path",
                                                         "trajectory", "joint_names")}
               for r in results]
    al = [{k: v for k, v in r.items() if k not in ("queries", "query_refused")} for r in rounds]
    document = {"held_out": held, "services": services, "geodesics": summary,
                "active_learning": al, "checks": [c.row() for c in checks],
                "steps": dict(steps), "seconds": seconds}
    atomic_write(os.path.join(out, "report.json"), lambda f: json.dump(document, f, indent=1),
                 "w")
