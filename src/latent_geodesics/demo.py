"""The main job on the embedded default: the simulated Panda arm with a data hole.

Trains the default model (once), starts a roscore on a free port and the
geodesic server from its launch file, calls its services and action as a
client would, records the published trajectories with rosbag, and writes a
report with figures into the output directory.
"""
import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latent_geodesics.data import arm_dataset
from latent_geodesics.data.recordings import to_ros2_bag
from latent_geodesics.engine import Settings, endpoint_limit_of
from latent_geodesics.evaluation import hole_side_pairs
from latent_geodesics.loading import model_graph
from latent_geodesics.model import load_model, save_model
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.training import DEFAULTS, NOISE_FACTOR, NOISE_FLOOR_RAD, train_iwae
from latent_geodesics.trajectory import JointLimits

SERVER = "/geodesic_server"
TOPICS = [SERVER + "/trajectory", SERVER + "/latent_path"]


def default_model(out, epochs):
    """Train the arm model unless a complete one for these epochs is already there;
    also keep its data. Returns (model, model directory, data path, arm data set)."""
    model_dir = os.path.join(out, "model")
    data_path = os.path.join(out, "arm_data.npz")
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    np.savez(data_path, data=arm.data, joint_names=np.array(arm.joint_names))
    try:
        model = load_model(model_dir, "cpu")
        if model.meta["training"]["epochs"] == epochs and model.data is not None:
            return model, model_dir, data_path, arm
    except Exception:
        pass
    print("training the default model on the simulated arm (%d epochs)..." % epochs)
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=epochs, seed=0, progress=False)
    save_model(model, model_dir, model.meta)
    return load_model(model_dir, "cpu"), model_dir, data_path, arm


def run_queries(model, pairs, data):
    """Call the server as a client would, between recorded poses (joint
    configurations, as a robot asks); returns per-pair results and timings."""
    import actionlib
    import rospy

    from latent_geodesics.msg import Endpoint, NNGeodesicAction, NNGeodesicGoal
    from latent_geodesics.srv import Decode, Encode, GraphGeodesic

    rospy.init_node("latent_geodesics_demo", anonymous=True)
    for name in ("encode", "decode", "graph_geodesic"):
        rospy.wait_for_service(SERVER + "/" + name, timeout=180)
    encode = rospy.ServiceProxy(SERVER + "/encode", Encode)
    decode = rospy.ServiceProxy(SERVER + "/decode", Decode)
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic, persistent=True)
    nn = actionlib.SimpleActionClient(SERVER + "/nn_geodesic", NNGeodesicAction)
    nn.wait_for_server(rospy.Duration(60))
    rospy.sleep(1.0)  # let rosbag subscribe before anything is published

    z = model.latents
    dec = decode(latent=list(map(float, z[0])))
    enc = encode(joint_names=dec.joint_names, positions=dec.positions)
    services = {"decode_ok": dec.success, "encode_ok": enc.success,
                "round_trip_latent_error": float(np.abs(np.array(enc.latent) - z[0]).max())}
    results = []
    names = list(dec.joint_names)
    for i, j in pairs:
        start = Endpoint(joint_names=names, positions=list(map(float, data[i])))
        goal = Endpoint(joint_names=names, positions=list(map(float, data[j])))
        t0 = time.perf_counter()
        g = graph(start=start, goal=goal, publish=True)
        graph_ms = 1e3 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        nn.send_goal(NNGeodesicGoal(start=start, goal=goal, publish=True))   # defaults
        nn.wait_for_result(rospy.Duration(300))
        refine_ms = 1e3 * (time.perf_counter() - t0)
        r = nn.get_result()
        if not (g.success and r.success):
            raise RuntimeError("geodesic query failed: %s / %s" % (g.message, r.message))
        q = np.array([p.positions for p in r.trajectory.points])
        results.append({
            "data_distance": r.stats.data_distance, "graph_data_distance": g.stats.data_distance,
            "chord_data_distance": r.stats.chord_data_distance,
            "data_spacing": r.stats.data_spacing, "metric_candidate": g.stats.candidate,
            "joint_path_length": float(np.linalg.norm(np.diff(q, axis=0), axis=1).sum()),
            "chord_length": float(np.linalg.norm(q[-1] - q[0])),
            "pair": [int(i), int(j)], "straight_line_length": g.straight_line_length,
            "graph_length": g.length, "refined_length": r.length, "graph_round_trip_ms": graph_ms,
            "refine_round_trip_ms": refine_ms, "refine_iterations": r.stats.iterations,
            "start_offset": r.stats.start_offset, "goal_offset": r.stats.goal_offset,
            "endpoint_error": float(max(np.abs(q[0] - data[i]).max(),
                                        np.abs(q[-1] - data[j]).max())),
            "max_joint_step": r.stats.max_joint_step, "duration": r.stats.duration,
            "bridges": g.stats.bridges,
            "graph_path": np.reshape(g.latent_path, (-1, g.latent_dim)),
            "refined_path": np.reshape(r.latent_path, (-1, r.latent_dim)),
            "trajectory": r.trajectory, "joint_names": list(r.trajectory.joint_names)})
        rospy.sleep(0.2)
    return services, results


def chord_trajectory(q_start, q_goal, limits, n=60):
    """The joint-space straight line timed under the same limits."""
    from latent_geodesics.trajectory import time_parametrize
    timing = time_parametrize(np.linspace(q_start, q_goal, n), limits)
    return timing.times, timing.positions


ROBOT_PIXELS = 1500   # bright (white) pixels of the demo arm in rviz's 3-D view, at least


def robot_pixels(path):
    """Pixels of the robot model (white links: bright and near-grey) inside rviz's 3-D
    view, found as the bounding box of its dark background (48, 48, 48)."""
    from PIL import Image
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    background = (np.abs(rgb - 48) <= 3).all(-1)
    # The view: the rows and columns that are mostly background (a stray pixel of that
    # grey in a panel's text does not count).
    rows = np.flatnonzero(background.mean(1) > 0.3)
    cols = np.flatnonzero(background.mean(0) > 0.3)
    if len(rows) == 0:
        return 0
    view = rgb[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return int(((view.min(-1) > 150) & (view.max(-1) - view.min(-1) < 40)).sum())


def rviz_screenshot(ros, out, pair_endpoints, seconds=12):
    """rviz on a virtual screen (Xvfb) showing the robot following a geodesic;
    saved as out/rviz.png. Returns (path or None, what happened, robot pixels)."""
    import rospy
    from PIL import ImageGrab

    from latent_geodesics.srv import GraphGeodesic
    if not (shutil.which("rviz") and shutil.which("Xvfb")):
        return None, "rviz or Xvfb is not installed (make demo installs them)", 0
    display = ":%d" % (90 + os.getpid() % 100)
    xvfb = ros.start(["Xvfb", display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"])
    os.environ["DISPLAY"] = display
    import rospkg
    panda = os.path.join(rospkg.RosPack().get_path("latent_geodesics"), "urdf", "panda.urdf")
    view = ros.launch("latent_geodesics_viz", "view.launch", urdf=panda)
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic)
    start, goal = pair_endpoints
    deadline = time.time() + seconds
    while time.time() < deadline:   # the path is not latched: publish while rviz subscribes
        graph(start=start, goal=goal, publish=True)
        time.sleep(2.0)
    path = os.path.join(out, "rviz.png")
    try:
        ImageGrab.grab(xdisplay=display).save(path)
        pixels = robot_pixels(path)
        result = path, "%d robot pixels in the 3-D view" % pixels, pixels
    except OSError as e:
        result = None, "no screenshot: %s" % e, 0
    for proc in (view, xvfb):
        ros.end(proc)
    os.environ.pop("DISPLAY", None)
    return result


def leaves_data(graph, points):
    """How far a latent path gets from the data, and the server's refusal limit."""
    return float(graph.tree.query(points)[0].max()), graph.outside_factor * graph.reach


def hole_latents(model, seed=7):
    """Encoded held-out poses whose targets lie in the arm's data hole."""
    from latent_geodesics.evaluation import arm_goal_poses
    inside = arm_goal_poses(120, seed)[0]
    with torch.no_grad():
        return model.encode(torch.as_tensor(inside, dtype=torch.float32)).double().numpy()


def write_figures(model, graph, results, out, limits):
    import matplotlib.pyplot as plt

    from latent_geodesics.plots import latent_figure
    z = model.latents
    paths = []
    for k, r in enumerate(results):
        i, j = r["pair"]
        tag = "pair %d (%d to %d)" % (k + 1, i, j)
        far, limit = leaves_data(graph, r["refined_path"])
        flag = ", leaves the data by %.2f (> limit %.2f)" % (far, limit) if far > limit else ""
        # One colour a pair; the straight latent line dashed and thin, drawn on top.
        paths += [(tag + ": served geodesic, %.2f rad from the data%s" % (
                       r["data_distance"], flag), r["refined_path"], "C%d-" % (k + 1)),
                  (tag + ": straight latent line", np.stack([z[i], z[j]]), "C%d:" % (k + 1))]
    marks = [("held-out poses in the data hole (never demonstrated)", hole_latents(model),
              "mx")]
    fig = latent_figure(graph.decoder, z, paths, "Latent space: log MF of the served metric, "
                        "data, geodesics (o start, * goal)", 120, marks=marks, size=(10, 7.5))
    fig.savefig(os.path.join(out, "latent_geodesics.png"))
    r = results[0]
    i, j = r["pair"]
    times = [p.time_from_start.to_sec() for p in r["trajectory"].points]
    q = np.array([p.positions for p in r["trajectory"].points])
    v = np.array([p.velocities for p in r["trajectory"].points])
    st, sq = chord_trajectory(q[0], q[-1], limits)
    styles = ["-", "--", "-.", ":"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), sharex=True)
    for ax, (title, t, x) in zip(axes, [("along the served geodesic", times, q),
                                        ("along the joint straight line", st, sq)]):
        for d in range(x.shape[1]):
            ax.plot(t, x[:, d], styles[d % 4], lw=1.8, label=r["joint_names"][d])
        ax.set_title("Joint angles " + title)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("angle [rad]")
    ax = axes[2]
    for d in range(v.shape[1]):
        ax.plot(times, v[:, d] / limits.velocity[d], styles[d % 4], lw=1.8,
                label=r["joint_names"][d])
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.axhline(-1.0, color="k", ls="--", lw=1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_title("Joint velocity / limit (TOPP-RA, time-optimal)")
    ax.set_xlabel("time [s]")
    axes[2].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Pair 1: data poses %d to %d" % (i, j))
    fig.tight_layout()
    fig.savefig(os.path.join(out, "joint_angles.png"))
    plt.close(fig)


def round_summary(m, store):
    """A RoundMetrics message (and the store's record of its round) as a dict."""
    info = store.round_info(m.round) if m.round >= 1 else None
    queries, refused = None, None
    if info is not None:
        queries, refused = store.query_latents(m.round)
    return {"round": m.round, "asked_by": info["model_dir"] if info else None,
            "queries": queries, "query_refused": refused, "demonstrations": m.demonstrations,
            "refused": m.refused, "total": m.total_demonstrations, "smoothness": m.smoothness,
            "max_step": m.max_step, "max_log_mf": m.max_log_mf,
            "held_out_rmse": m.held_out_rmse, "model_dir": m.model_dir}


def run_active_learning(ros, out, model_dir, data_path, rounds, queries, epochs):
    """Server + demonstrator + learner (active_learning.launch, as the README runs it,
    with the settings that fill gaps: retrain from scratch, as many epochs as the
    first model); waits until the learner has finished `rounds` rounds.

    Runs on the demo's roscore once the geodesic server has been stopped. Returns
    per-round metrics from round 0 (the initial model, published by the learner),
    queries and model directories, and writes the figures.
    """
    import rospy

    from latent_geodesics.msg import RoundMetrics
    from latent_geodesics.store import DemoStore
    work = os.path.abspath(os.path.join(out, "active_learning"))
    shutil.rmtree(work, ignore_errors=True)   # a fresh loop on every run
    metrics = {}
    sub = rospy.Subscriber("/active_learner/metrics", RoundMetrics,
                           lambda m: metrics.__setitem__(m.round, m))
    launched = ros.launch("latent_geodesics", "active_learning.launch",
                          model_dir=os.path.abspath(model_dir),
                          initial_data=os.path.abspath(data_path), work_dir=work,
                          rounds=rounds, queries_per_round=queries, retrain="scratch",
                          epochs=epochs, output="log")
    # Round 0 is the initial model's baseline, published first: it is not a round done.
    finished = lambda: sorted(r for r in metrics if r >= 1)  # noqa: E731
    deadline = time.time() + 300 + 120 * rounds
    while len(finished()) < rounds and time.time() < deadline and launched.poll() is None:
        time.sleep(0.5)
    sub.unregister()
    ros.end(launched)
    if len(finished()) < rounds or 0 not in metrics:
        raise RuntimeError("active learning finished %d of %d rounds; see %s/ros.log"
                           % (len(finished()), rounds, out))
    store = DemoStore(os.path.join(work, "demonstrations.db"))
    summary = [round_summary(metrics[r], store) for r in sorted(metrics)]
    store.close()
    write_active_learning_figures(summary, out)
    return summary


def write_active_learning_figures(rounds, out):
    import matplotlib.pyplot as plt

    from latent_geodesics.plots import draw_latent
    asked = [r for r in rounds if r["asked_by"]]
    fig, axes = plt.subplots(1, len(asked), figsize=(5.5 * len(asked), 4.8), squeeze=False)
    for ax, r in zip(axes[0], asked):
        model = load_model(r["asked_by"], "cpu")
        q, refused = r["queries"].reshape(-1, model.z_dim), r["query_refused"]
        marks = [("the data hole (held-out poses, never demonstrated)", hole_latents(model),
                  "mx"), ("answered queries (demonstrated)", q[~refused], "ro"),
                 ("refused queries (collision or limits)", q[refused], "kx")]
        im = draw_latent(ax, model, model.latents, title="round %d: queries of the model it "
                         "started with" % r["round"], resolution=96, marks=marks,
                         legend=ax is axes[0][0])
        fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.suptitle("Each round's model has latent coordinates of its own: compare queries "
                 "with the data in the same panel, not across panels")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "active_learning_queries.png"))
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x = [r["total"] for r in rounds]
    for ax, key, label in zip(axes, ("smoothness", "max_log_mf", "held_out_rmse"),
                              ("largest step / mean step along held-out geodesics",
                               "largest log MF along them", "held-out RMSE [rad]")):
        y = np.array([r[key] for r in rounds])
        ax.plot(x, y, "o-", label="after each round")
        ax.axhline(y[0], color="grey", ls="--", lw=1, label="round 0 (initial model)")
        middle, half = y.mean(), max(np.ptp(y), 0.2 * abs(y.mean()) + 1e-9)
        ax.set_ylim(middle - half, middle + half)   # no magnified noise
        ax.set_xlabel("demonstrations")
        ax.set_title("%s\n(lower is better)" % label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "active_learning_metrics.png"))
    plt.close(fig)


def _learned(diagnosis, latent_dim):
    from latent_geodesics.training import collapse_warning
    if not diagnosis:
        return "not diagnosed"
    verdict = "FAIL" if diagnosis["collapsed"] else "pass"
    return "%s: held-out RMSE is %.0f %% of predicting the mean pose (fail above 90 %%); " \
        "%d of %d latent dimensions in use%s" % (
            verdict, 100 * diagnosis["rmse_ratio"], diagnosis["active_latent_dims"], latent_dim,
            ("; " + collapse_warning(diagnosis, latent_dim)) if diagnosis["collapsed"] else "")


@torch.no_grad()
def reproduced(model, data):
    """(N,) bool: poses the model reconstructs within the server's automatic
    max_endpoint_offset (the server refuses the others as endpoints)."""
    limit, _ = endpoint_limit_of(model, Settings.max_endpoint_offset)
    x = torch.as_tensor(data, dtype=torch.float32)
    return (model.decode(model.encode(x)).double().numpy() - data).__abs__().max(1) <= limit


def first_pair(model, pairs, data):
    from latent_geodesics.msg import Endpoint
    i, j = pairs[0]
    return (Endpoint(joint_names=model.joint_names, positions=list(map(float, data[i]))),
            Endpoint(joint_names=model.joint_names, positions=list(map(float, data[j]))))


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
    return checks + learning_checks(rounds)


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
    lines += model_lines(model, services) + geodesic_lines(results) + learning_lines(rounds)
    lines += ["", "## Time", "", "| step | seconds |", "|---|---|"]
    lines += ["| %s | %.0f |" % step for step in steps]
    lines += ["| total | %.0f |" % seconds, ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
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
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"held_out": held, "services": services, "geodesics": summary,
                   "active_learning": al, "checks": [c.row() for c in checks],
                   "steps": dict(steps), "seconds": seconds}, f, indent=1)


QUICK = {"epochs": 30, "rounds": 1, "queries": 3, "pairs": 2}   # --quick: the same path, smaller


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--rounds", type=int, default=2, help="active-learning rounds")
    p.add_argument("--queries", type=int, default=6, help="queries per round")
    p.add_argument("--pairs", type=int, default=3, help="pose pairs across the data hole")
    p.add_argument("--quick", action="store_true",
                   help="the same steps, smaller: %s (what make test runs)" % QUICK)
    p.add_argument("--bag2", metavar="DIR",
                   help="also write the served trajectories as a ROS 2 bag (sqlite3) in DIR")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    start, steps = time.time(), []

    def step(name):
        steps.append((name, time.time() - start - sum(s for _, s in steps)))

    os.makedirs(args.out, exist_ok=True)
    model, model_dir, data_path, arm = default_model(args.out, args.epochs)
    step("data and model")
    pairs = hole_side_pairs(arm, args.pairs, allowed=reproduced(model, arm.data))
    graph = model_graph(model)[0]   # the server's graph (cached beside the model) for figures
    step("graph")
    with ros_processes(os.path.join(args.out, "ros.log")) as ros:
        server = ros.launch("latent_geodesics", "geodesic_server.launch",
                            model_dir=os.path.abspath(model_dir))
        bag = ros.start(["rosbag", "record", "-O", os.path.join(args.out, "geodesics.bag")]
                        + TOPICS)
        services, results = run_queries(model, pairs, arm.data)
        ros.end(bag)
        if args.bag2:
            to_ros2_bag(os.path.join(args.out, "geodesics.bag"), args.bag2)
            print("ROS 2 bag: %s" % args.bag2)
        step("server start and geodesic queries")
        screenshot = rviz_screenshot(ros, args.out, first_pair(model, pairs, arm.data))
        print(screenshot[1])
        ros.end(server)
        step("rviz screenshot")
        write_figures(model, graph, results, args.out, JointLimits.uniform(
            model.joint_names, Settings.max_joint_velocity, Settings.max_joint_acceleration))
        step("figures")
        print("active learning: %d rounds with the simulated demonstrator..." % args.rounds)
        rounds = run_active_learning(ros, args.out, model_dir, data_path, args.rounds,
                                     args.queries, args.epochs)
        step("active learning (%d rounds of %d queries)" % (args.rounds, args.queries))
    services["rviz"], services["rviz_pixels"] = screenshot[1], screenshot[2]
    write_report(model, graph, services, results, args.out, time.time() - start, rounds, steps)
    print(Path(os.path.join(args.out, "report.md")).read_text())
    if not all(r["refined_length"] <= r["straight_line_length"] * (1 + 1e-9) for r in results):
        sys.exit("a geodesic came out longer than its straight line")
