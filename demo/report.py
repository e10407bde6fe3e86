"""The demo's report: checks (each with its threshold and its advice), the model, the
geodesics and the active-learning rounds, as report.md and report.json."""
import json
import os
from dataclasses import dataclass

import numpy as np

from demo.client import ROBOT_PIXELS
from demo.learning import worst_hole
from demo.task import HOLE, PLACES
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
    return model_checks(model, services) + serving_checks(results, services) \
        + world_checks(services.get("world")) + learning_checks(rounds)


def model_checks(model, services):
    held = model.meta.get("report", {}).get("held_out", {})
    diagnosis = model.meta.get("report", {}).get("diagnosis")
    noise = model.meta.get("report", {}).get("data_noise", np.nan)
    agree = max(ROUND_TRIP_FLOOR, held.get("pose_error_p99") or np.inf)
    return [
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
        Check("decode(encode(decode(z))) against decode(z): the round trip, on the poses",
              "%.3f rad" % services["round_trip_error"], "<= %.3f rad (the held-out poses' "
              "99th-percentile worst-joint error)" % agree,
              services["round_trip_error"] <= agree,
              "the encoder and decoder disagree: train longer")]


def serving_checks(results, services):
    data_spacing = results[0]["data_spacing"]
    closer = max(r["data_distance"] / r["chord_data_distance"] for r in results)
    refine_ms = np.median([r["refine_round_trip_ms"] for r in results])
    return [
        Check("served motions stay with the demonstrations: largest distance to a recorded "
              "pose (worst pair)", "%.3f rad (%.1f spacings)" % (
                  worst(results, "data_distance"),
                  worst(results, "data_distance") / data_spacing),
              "<= %.2f rad" % FOLLOWS, worst(results, "data_distance") <= FOLLOWS,
              "a pair crosses a region no demonstration covers: demonstrate there (active "
              "learning asks for it)"),
        Check("... against the joint straight line's (worst pair's ratio)", "%.2f" % closer,
              "<= %.1f (at most %d %% of the straight line's)" % (WIDE_MARGIN,
                                                                  100 * WIDE_MARGIN),
              closer <= WIDE_MARGIN,
              "the metric lets paths cut across the data: is metric mean+variance set?"),
        Check("graph geodesic / straight latent line, data-aware metric (worst pair)",
              "%.3f" % max(r["graph_length"] / r["straight_line_length"] for r in results),
              "<= 1.0", all(r["graph_length"] <= r["straight_line_length"] * (1 + LENGTHS_AGREE)
                            for r in results), "see the geodesics table below"),
        Check("refined / graph geodesic (worst pair)", "%.3f" % max(
            r["refined_length"] / r["graph_length"] for r in results), "<= 1.0",
              all(r["refined_length"] <= r["graph_length"] * (1 + LENGTHS_AGREE)
                  for r in results),
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


FOLLOWS = 0.15       # rad a served motion may stray from the recorded poses
ROUND_TRIP_FLOOR = 0.01   # rad: a round trip within this always agrees
LENGTHS_AGREE = 1e-6      # relative: two responses' lengths of one curve (float32 decoders)
WIDE_MARGIN = 0.5    # served / straight line distance to the data: "a wide margin"
WORLD_DATA_DISTANCE = 0.30   # rad the motion around the box may stray from the recorded poses


def world_checks(world):
    if not world:
        return []
    before = world["before"]
    checks = [Check("a box where the served motion's hand passed: the blind motion hits it",
                    "clearance %.3f m" % before["clearance"], "< 0 (the check has a case)",
                    before["collides"], "the box missed the motion: see world.png")]
    if "refused" in world:
        return checks + [Check("... with the box in the scene: served collision-free",
                               "refused (no way around it)", "served, > 0 m", False,
                               "no demonstrated way passes the box: move it or demonstrate "
                               "a way around it (a collision is never served)")]
    after = world["after"]
    return checks + [
        Check("... with the box in the scene: served collision-free (independent check "
              "of the URDF's geometry)", "clearance %.3f m (%s)" % (
                  after["clearance"], after["method"]), "> 0", not after["collides"],
              "a collision was served: report it (this must never happen)"),
        Check("... and still near the demonstrations", "%.3f rad from the recorded poses"
              % after["data_distance"], "<= %.2f rad" % WORLD_DATA_DISTANCE,
              after["data_distance"] <= WORLD_DATA_DISTANCE,
              "the way around leaves the data: demonstrate a way around such objects")]


HOLE_BETTER = 0.7     # the last round's worst deviation in the hole, x round 0's
HOLE_QUERIES = 0.5    # share of the first round's queries that should land in the hole


def learning_checks(rounds):
    """What a user sees of active learning: the queries land in the hole, and the
    served motion there comes closer to the teacher's. "No better" is a WARN."""
    if len(rounds) < 2:
        return []
    first, last = rounds[0], rounds[-1]
    asked = rounds[1]
    share = asked["queries_in_hole"] / max(1, len(asked["query_places"]))
    before, after = worst_hole(first, "deviation"), worst_hole(last, "deviation")
    near = worst_hole(last, "data_distance")
    return [Check("active learning: round 1's queries in the hole", "%d of %d" % (
                      asked["queries_in_hole"], len(asked["query_places"])),
                  ">= %d %%" % (100 * HOLE_QUERIES), share >= HOLE_QUERIES,
                  "the learner does not see the hole: more queries per round, or the "
                  "selector combined"),
            Check("active learning: served carries in the hole, largest deviation from "
                  "the teacher's carry (worst place), last round", "%.3f rad (round 0: %.3f)"
                  % (after, before), "<= %.1f x round 0" % HOLE_BETTER,
                  after <= HOLE_BETTER * before,
                  "no better: more rounds or queries per round (the hole is not filled)"),
            Check("... and their distance to the demonstrations, last round",
                  "%.3f rad (round 0: %.3f)" % (near, worst_hole(first, "data_distance")),
                  "<= %.2f rad and below round 0" % FOLLOWS,
                  near <= FOLLOWS and near < worst_hole(first, "data_distance"),
                  "no better: more rounds or queries per round (the hole is not filled)")]


def write_report(model, graph, services, results, out, seconds, rounds=(), steps=()):
    """report.md (checks, model, geodesics, active learning, time) and report.json."""
    checks = verdicts(model, graph, services, results, rounds)
    warned = [c for c in checks if not c.ok]
    lines = ["# latent_geodesics demo: the simulated Panda carrying over a box", "",
             "**Summary: %d of %d checks pass.**%s" % (
                 len(checks) - len(warned), len(checks), "" if not warned else
                 " Look at: " + "; ".join("%s (%s)" % (c.title, c.advice) for c in warned)
                 + "."), ""] + outcome_lines(results, rounds) + [
             "", "| check | measured | threshold | verdict |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % c.row() for c in checks]
    lines += TERMS + model_lines(model, services) + geodesic_lines(results)
    lines += world_lines(services.get("world")) + learning_lines(rounds)
    lines += ["", "## Time", "", "| step | seconds |", "|---|---|"]
    lines += ["| %s | %.0f |" % step for step in steps]
    lines += ["| total | %.0f |" % seconds, ""]
    atomic_write(os.path.join(out, "report.md"), lambda f: f.write("\n".join(lines)), "w")
    write_json(model, services, results, out, seconds, rounds, steps, checks)


def outcome_lines(results, rounds):
    """Did it work, in two sentences a user reads first."""
    served, line = worst(results, "data_distance"), worst(results, "chord_data_distance")
    lines = ["**The task:** carry an object from the table over a box to a tray. Every "
             "recorded carry lifts over the box; the joint-space straight line between a "
             "pick and its place does not. **Served:** the motions the server plans between "
             "%d such pairs stay within %.3f rad of the demonstrations, the straight line "
             "strays up to %.3f rad (%.0f %% of that)." % (
                 len(results), served, line, 100 * served / line)]
    if len(rounds) >= 2:
        before, after = worst_hole(rounds[0], "deviation"), worst_hole(rounds[-1], "deviation")
        lines += ["", "**Active learning:** nobody demonstrated carries to places x = %.2f-"
                  "%.2f m (the hole). Asked for such carries, the server's motion strayed up "
                  "to %.3f rad from the carry the teacher shows there; after %d round(s) of "
                  "queries (%d of %d in the hole) and the teacher's answers, %.3f rad." % (
                      HOLE[0], HOLE[1], before, len(rounds) - 1,
                      sum(r["queries_in_hole"] for r in rounds[1:]),
                      sum(len(r["query_places"]) for r in rounds[1:]), after)]
    return lines


TERMS = ["", "Terms: *distance to the demonstrations* (or to the data) is how far a motion's "
         "poses lie from the nearest recorded pose, in rad (joint space); a *spacing* is the "
         "recordings' typical distance between neighbouring poses. The *straight latent "
         "line* joins two poses' codes in the model's latent space; the *joint straight "
         "line* joins the poses themselves. *MF* (magnification factor) is how much the "
         "decoder stretches a small latent area into joint space, under the served metric "
         "(which also grows away from the data): high MF marks where latent steps make "
         "large motions or leave the data."]


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
             "- encode/decode services: %s (decode(encode(decode(z))) %.2e rad from "
             "decode(z))" % ("ok" if services["encode_ok"] and services["decode_ok"]
                             else "FAILED", services["round_trip_error"]), ""]
    return lines


def geodesic_lines(results):
    lines = ["", "## Served motions between a recorded pick and its place", "",
             "Each pair: the first and last pose of one recorded carry (places x = %.2f-%.2f m "
             "outside the hole). The recorded carry lifts over the box; the joint-space "
             "straight line between its ends does not." % PLACES, "",
             "| pair (x) | distance to the demonstrations: served, largest / mean | joint "
             "straight line, largest / mean | served / straight | deviation from the recorded "
             "carry: served / straight | straight line through the box | lengths: straight "
             "latent, graph, refined | graph / refine round trip | start / goal offset | "
             "largest step | duration | largest jerk |", "|---|---|---|---|---|---|---|---|"
             "---|---|---|---|"]
    for k, r in enumerate(results):
        lines.append("| %d: %d-%d | %.3f / %.3f rad | %.3f / %.3f rad | %.2f | %.3f / %.3f rad "
                     "| %s | %.2f, %.2f, %.2f | %.1f / %.1f ms | %.3f / %.3f rad | %.3f rad | "
                     "%.2f s | %.0f rad/s³ |" % (
                         k + 1, *r["pair"], r["data_distance"], r["mean_data_distance"],
                         r["chord_data_distance"], r["chord_mean_data_distance"],
                         r["data_distance"] / r["chord_data_distance"],
                         r["demonstration_deviation"], r["chord_demonstration_deviation"],
                         "yes" if r["chord_through_box"] else "no",
                         r["straight_line_length"], r["graph_length"], r["refined_length"],
                         r["graph_round_trip_ms"], r["refine_round_trip_ms"],
                         r["start_offset"], r["goal_offset"], r["max_joint_step"],
                         r["duration"], r["max_jerk"]))
    lines += ["", "![each pair in joint space, the hand's path and the distance to the "
              "demonstrations](pairs.png)", "",
              "pairs.png, per pair: joints 1 and 2 (grey: recorded carries, magenta: the "
              "hole's carries nobody demonstrated), the hand's path seen from the front with "
              "the box, and the distance to the nearest recorded pose along the motion. The "
              "served motion may take a neighbouring carry's way (its deviation from this "
              "carry) while it stays among the demonstrations (its distance to them). "
              "The server reports the distances in every response's stats (data_distance, "
              "and chord_data_distance for the joint straight line; the recordings' spacing "
              "is %.3f rad)." % results[0]["data_spacing"],
              "Lengths are Riemannian lengths under the data-aware metric (the decoder's mean "
              "and a variance that grows away from the data), so a geodesic is never longer "
              "than the straight latent line under it; in joint space it is longer than the "
              "chord, because the demonstrations lift. Start/goal offset: how far the "
              "model's reconstruction of each requested pose is (largest joint); it is "
              "carried along the path, so every trajectory starts and ends exactly at the "
              "requested poses. Jerk: the largest change of a joint's acceleration per second "
              "between the trajectory's points.", "",
              "![the latent space, one panel per pair](latent_geodesics.png)", "",
              "![pair 1's joints over time](joint_angles.png)", "",
              "![rviz: the robot on pair 1's motion](rviz.png)", "",
              "Trajectories: geodesics.bag."]
    return lines


def world_lines(world):
    if not world:
        return []
    rows = []
    for name, label in (("before", "before the box (blind to it)"),
                        ("after", "with the box in the scene")):
        if name in world:
            run = world[name]
            rows.append("| %s | %s | %.3f m | %.3f rad | %.2f s | %s |" % (
                label, "yes" if run["collides"] else "no", run["clearance"],
                run["data_distance"], run["duration"], run["method"]))
    if "refused" in world:
        rows.append("| %s | refused: %s | | | | |" % (label, world["refused"]))
    return ["", "## The robot's world: a box on the way", "",
            "A %.0f cm box was put where pair %d's served motion had its hand %.0f %% of the "
            "way, sent as MoveIt sends objects (moveit_msgs/CollisionObject on "
            "/collision_object); the same request was then asked again. Clearance: the "
            "robot's body (every link of the URDF, sampled densely: not the spheres the "
            "server plans with) to the box." % (100 * world["box_size"], world["pair"],
                                                 100 * world["at"]), "",
            "| motion | collides | smallest clearance | distance to the recorded poses | "
            "duration | method |", "|---|---|---|---|---|---|"] + rows + [
            "", "![clearance over time](world.png)", ""]


def learning_lines(rounds):
    if not rounds:
        return []
    lines = ["", "## Active learning with the demo's teacher", "",
             "active_learning.launch with system:=none (no simulator node) and "
             "demonstrator:=/demo_teacher, a Demonstrate service of the demo itself: asked "
             "about a configuration, it demonstrates the carry whose way passes nearest to it "
             "(retrain: scratch, so a filled hole gets its latent room). After each round the "
             "server is asked for carries to places inside the hole, between the teacher's "
             "own pick and place there.", "",
             "| round | queries in the hole | demonstrations (refused) | total | served in the "
             "hole: largest deviation from the teacher's carry | hand's largest sideways "
             "stray | distance to the demonstrations | learner's metrics: largest step, "
             "smoothness, held-out RMSE |", "|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        lines.append("| %d | %s | %d (%d) | %d | %.3f rad | %.1f cm | %.3f rad | %.4f rad, "
                     "%.2f, %.4f rad |" % (
                         r["round"], "-" if r["query_places"] is None else "%d of %d" % (
                             r["queries_in_hole"], len(r["query_places"])),
                         r["demonstrations"], r["refused"], r["total"],
                         worst_hole(r, "deviation"), 100 * worst_hole(r, "sideways"),
                         worst_hole(r, "data_distance"), r["max_step"], r["smoothness"],
                         r["held_out_rmse"]))
    lines += ["", "Round 0 is the initial model. The served columns are the worst of the "
              "places x = %s m. The learner's own metrics (largest joint step and largest over "
              "mean step along its geodesics between pose pairs whose straight latent line "
              "crosses the largest gaps; the held-out error) are what it publishes on "
              "~metrics." % ", ".join("%.3f" % h["place"] for h in rounds[0]["hole"]), "",
              "![the served carries in the hole, round by round](active_learning_hole.png)",
              "", "![each round's queries](active_learning_queries.png)", "",
              "Store: active_learning/demonstrations.db."]
    return lines


def write_json(model, services, results, out, seconds, rounds, steps, checks):
    held = model.meta.get("report", {}).get("held_out", {})
    summary = [{k: v for k, v in r.items() if k not in (
        "graph_path", "refined_path", "trajectory", "joint_names", "demonstration")}
        for r in results]
    al = [dict({k: v for k, v in r.items() if k not in ("queries", "query_refused", "hole")},
               hole=[{k: v for k, v in h.items() if k not in ("positions", "times")}
                     for h in r["hole"]]) for r in rounds]
    document = {"held_out": held, "services": services, "geodesics": summary,
                "active_learning": al, "checks": [c.row() for c in checks],
                "steps": dict(steps), "seconds": seconds}
    atomic_write(os.path.join(out, "report.json"), lambda f: json.dump(document, f, indent=1),
                 "w")
