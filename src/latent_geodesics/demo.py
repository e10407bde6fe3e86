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

import numpy as np

from latent_geodesics.data import arm_dataset
from latent_geodesics.engine import Settings
from latent_geodesics.evaluation import hole_crossing_pairs
from latent_geodesics.graph import LatentGraph
from latent_geodesics.model import load_model, save_model
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.trajectory import JointLimits
from latent_geodesics.training import DEFAULTS, train_iwae

SERVER = "/geodesic_server"
TOPICS = [SERVER + "/trajectory", SERVER + "/latent_path"]


def default_model(out, epochs):
    """Train the arm model unless a complete one is already there; also keep its data."""
    model_dir = os.path.join(out, "model")
    data_path = os.path.join(out, "arm_data.npz")
    try:
        model = load_model(model_dir, "cpu")
        if os.path.isfile(data_path):
            return model, model_dir, data_path
    except Exception:
        model = None
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    np.savez(data_path, data=arm.data, joint_names=np.array(arm.joint_names))
    if model is None:
        print("training the default model on the simulated arm (%d epochs)..." % epochs)
        model, _ = train_iwae(arm.data, arm.joint_names, epochs=epochs, seed=0)
        save_model(model, model_dir, model.meta)
    return load_model(model_dir, "cpu"), model_dir, data_path


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


def straight_trajectory(model, za, zb, limits, n=60):
    """The straight latent line decoded and timed under the same limits."""
    import torch
    from latent_geodesics.trajectory import time_parametrize
    line = np.linspace(za, zb, n)
    with torch.no_grad():
        q = model.decode(torch.as_tensor(line, dtype=torch.float32)).double().numpy()
    timing = time_parametrize(q, limits)
    return timing.times, timing.positions


def rviz_screenshot(ros, out, pair_endpoints, seconds=12):
    """rviz on a virtual screen (Xvfb) showing the robot following a geodesic;
    saved as out/rviz.png. Returns (path or None, what happened)."""
    import rospy
    from latent_geodesics.srv import GraphGeodesic
    from PIL import ImageGrab
    if not (shutil.which("rviz") and shutil.which("Xvfb")):
        return None, "rviz or Xvfb is not installed (make demo installs them)"
    display = ":%d" % (90 + os.getpid() % 100)
    xvfb = ros.start(["Xvfb", display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"])
    os.environ["DISPLAY"] = display
    view = ros.launch("latent_geodesics", "view.launch")
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic)
    start, goal = pair_endpoints
    deadline = time.time() + seconds
    while time.time() < deadline:   # the path is not latched: publish while rviz subscribes
        graph(start=start, goal=goal, publish=True)
        time.sleep(2.0)
    path = os.path.join(out, "rviz.png")
    try:
        ImageGrab.grab(xdisplay=display).save(path)
        result = path, "screenshot of rviz with the robot on pair 1's geodesic"
    except OSError as e:
        result = None, "no screenshot: %s" % e
    for proc in (view, xvfb):
        ros.end(proc)
    os.environ.pop("DISPLAY", None)
    return result


def leaves_data(graph, points):
    """How far a latent path gets from the data, and the server's refusal limit."""
    return float(graph.tree.query(points)[0].max()), graph.outside_factor * graph.reach


def hole_latents(model, seed=7):
    """Encoded held-out poses whose targets lie in the arm's data hole."""
    import torch
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
        paths += [(tag + ": straight line", np.stack([z[i], z[j]]), "--"),
                  (tag + ": refined geodesic" + flag, r["refined_path"], "-")]
    marks = [("held-out poses in the data hole (never demonstrated)", hole_latents(model),
              "mx")]
    fig = latent_figure(model, z, paths, "Latent space: log MF, data, geodesics (o start, "
                        "* goal)", 160, marks=marks, size=(9, 7))
    fig.savefig(os.path.join(out, "latent_geodesics.png"))
    r = results[0]
    i, j = r["pair"]
    times = [p.time_from_start.to_sec() for p in r["trajectory"].points]
    q = np.array([p.positions for p in r["trajectory"].points])
    v = np.array([p.velocities for p in r["trajectory"].points])
    st, sq = straight_trajectory(model, z[i], z[j], limits)
    styles = ["-", "--", "-.", ":"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), sharex=True)
    for ax, (title, t, x) in zip(axes, [("along the refined geodesic", times, q),
                                        ("along the straight latent line", st, sq)]):
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


def initial_metrics(model, data):
    """Round 0: the initial model on the learner's own evaluation set (from the data)."""
    from latent_geodesics.active_learning import evaluate
    from latent_geodesics.evaluation import data_evaluation_set
    pairs, held_out = data_evaluation_set(model, data)
    return evaluate(model, LatentGraph(model, model.latents), pairs, held_out)


def run_active_learning(ros, out, model_dir, data_path, rounds, queries=5):
    """Server + demonstrator + learner (active_learning.launch); waits for the rounds.

    Runs on the demo's roscore once the geodesic server has been stopped. Returns
    per-round metrics, queries and model directories, and writes the figures.
    """
    import rospy
    from latent_geodesics.msg import RoundMetrics
    from latent_geodesics.store import DemoStore
    work = os.path.abspath(os.path.join(out, "active_learning"))
    shutil.rmtree(work, ignore_errors=True)   # a fresh loop on every run
    metrics = []
    sub = rospy.Subscriber("/active_learner/metrics", RoundMetrics, metrics.append)
    launched = ros.launch("latent_geodesics", "active_learning.launch",
                          model_dir=os.path.abspath(model_dir),
                          initial_data=os.path.abspath(data_path), work_dir=work,
                          rounds=rounds, queries_per_round=queries, output="log")
    deadline = time.time() + 600
    while len({m.round for m in metrics}) < rounds and time.time() < deadline:
        time.sleep(0.5)
    sub.unregister()
    ros.end(launched)
    if len({m.round for m in metrics}) < rounds:
        raise RuntimeError("active learning did not finish; see %s/ros.log" % out)
    store = DemoStore(os.path.join(work, "demonstrations.db"))
    summary = []
    for m in sorted(metrics, key=lambda m: m.round):
        info = store.round_info(m.round)
        latent = [json.loads(z) for (z,) in store.db.execute(
            "SELECT latent FROM queries WHERE round=? ORDER BY idx", (m.round,))]
        summary.append({"round": m.round, "asked_by": info["model_dir"],
                        "queries": np.array(latent), "demonstrations": m.demonstrations,
                        "refused": m.refused, "total": m.total_demonstrations,
                        "smoothness": m.smoothness, "max_log_mf": m.max_log_mf,
                        "held_out_rmse": m.held_out_rmse, "model_dir": m.model_dir})
    store.close()
    model = load_model(model_dir, "cpu")
    start = {"round": 0, "asked_by": None, "queries": None, "demonstrations": 0, "refused": 0,
             "total": 0, "model_dir": model_dir,
             **initial_metrics(model, np.load(data_path)["data"])}
    summary = [start] + summary
    write_active_learning_figures(summary, out)
    return summary


def write_active_learning_figures(rounds, out):
    import matplotlib.pyplot as plt
    from latent_geodesics.plots import draw_latent
    asked = [r for r in rounds if r["asked_by"]]
    fig, axes = plt.subplots(1, len(asked), figsize=(5.5 * len(asked), 4.8), squeeze=False)
    for ax, r in zip(axes[0], asked):
        model = load_model(r["asked_by"], "cpu")
        im = draw_latent(ax, model, model.latents, title="round %d: queries of the model it "
                         "started with" % r["round"], resolution=96, queries=r["queries"],
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


def first_pair(model, pairs, data):
    from latent_geodesics.msg import Endpoint
    i, j = pairs[0]
    return (Endpoint(joint_names=model.joint_names, positions=list(map(float, data[i]))),
            Endpoint(joint_names=model.joint_names, positions=list(map(float, data[j]))))


def verdicts(model, graph, services, results, rounds):
    """(check, measured, threshold, verdict) rows: what a robotics user acts on."""
    held = model.meta.get("report", {}).get("held_out", {})
    diagnosis = model.meta.get("report", {}).get("diagnosis")
    spacing = graph.step * (graph.n_samples - 1)   # median k-th neighbour distance
    far = max(leaves_data(graph, r["refined_path"])[0] for r in results)
    limit = graph.outside_factor * graph.reach
    rows = [
        ("the model learned (not collapsed)", _learned(diagnosis, model.z_dim).split(":")[0],
         "held-out RMSE < 90 % of predicting the mean", diagnosis and not diagnosis["collapsed"]),
        ("held-out reconstruction RMSE", "%.3f rad" % held.get("rmse", np.nan), "<= 0.10 rad",
         held.get("rmse", np.inf) <= 0.10),
        ("worst joint reconstruction error", "%.3f rad" % held.get("max_abs_error", np.nan),
         "<= 0.50 rad", held.get("max_abs_error", np.inf) <= 0.50),
        ("encode(decode(z)) round trip", "%.3f latent" % services["round_trip_latent_error"],
         "<= half a neighbour spacing (%.3f)" % (0.5 * spacing),
         services["round_trip_latent_error"] <= 0.5 * spacing),
        ("graph geodesic / straight line (worst pair)", "%.3f" % max(
            r["graph_length"] / r["straight_line_length"] for r in results), "<= 1.0",
         all(r["graph_length"] <= r["straight_line_length"] * (1 + 1e-9) for r in results)),
        ("refined / graph geodesic (worst pair)", "%.3f" % max(
            r["refined_length"] / r["graph_length"] for r in results), "<= 1.0",
         all(r["refined_length"] <= r["graph_length"] * (1 + 1e-9) for r in results)),
        ("trajectory ends at the requested poses", "%.1e rad" % max(
            r["endpoint_error"] for r in results), "<= 1e-6 rad",
         max(r["endpoint_error"] for r in results) <= 1e-6),
        ("largest joint step between trajectory points", "%.3f rad" % max(
            r["max_joint_step"] for r in results), "<= 0.05 rad (max_joint_step)",
         max(r["max_joint_step"] for r in results) <= 0.05 + 1e-9),
        ("refined paths stay near the data", "%.2f latent" % far,
         "<= the server's refusal limit %.2f" % limit, far <= limit),
        ("refine round trip (median)", "%.0f ms" % np.median(
            [r["refine_round_trip_ms"] for r in results]), "<= 100 ms",
         np.median([r["refine_round_trip_ms"] for r in results]) <= 100)]
    rows.append(("rviz renders the robot on a geodesic", services.get("rviz", "not run"),
                 "a screenshot in rviz.png", services.get("rviz", "").startswith("screenshot")))
    if rounds:
        worse = [r["round"] for a, r in zip(rounds[:-1], rounds[1:])
                 if r["smoothness"] > a["smoothness"] * 1.01]
        rows.append(("active learning: smoothness after the last round",
                     "%.3f (round 0: %.3f)" % (rounds[-1]["smoothness"],
                                               rounds[0]["smoothness"]),
                     "<= round 0", rounds[-1]["smoothness"] <= rounds[0]["smoothness"]))
        rows.append(("active learning: rounds that made it worse",
                     ", ".join(map(str, worse)) or "none", "none (1 % tolerance)", not worse))
    return [(c, m, t, "pass" if ok else "WARN") for c, m, t, ok in rows]


ADVICE = {
    "the model learned (not collapsed)": "retrain (train_iwae --warmup, more epochs)",
    "held-out reconstruction RMSE": "more epochs, a larger --latent-dim or more data",
    "worst joint reconstruction error": "demonstrations near the worst poses",
    "encode(decode(z)) round trip": "the encoder and decoder disagree: train longer",
    "refined paths stay near the data": "a geodesic crosses a region without data: "
                                        "demonstrate there (active learning) or serve "
                                        "with metric: mean+variance",
    "refine round trip (median)": "a loaded machine; or lower polyline_iterations",
    "active learning: rounds that made it worse": "more fine-tuning epochs per round",
    "active learning: smoothness after the last round": "the demonstrations did not yet "
                                                         "smooth the geodesics: more rounds",
    "rviz renders the robot on a geodesic": "install rviz and xvfb (make demo does)",
}


def write_report(model, graph, services, results, out, seconds, rounds=()):
    report = model.meta.get("report", {})
    held = report.get("held_out", {})
    checks = verdicts(model, graph, services, results, rounds)
    warned = [c for c in checks if c[3] != "pass"]
    lines = ["# latent_geodesics demo: simulated Panda arm with a data hole", "",
             "**Summary: %d of %d checks pass.**%s" % (
                 len(checks) - len(warned), len(checks), "" if not warned else
                 " Look at: " + "; ".join("%s (%s)" % (c[0], ADVICE.get(c[0], "see below"))
                                          for c in warned) + "."), "",
             "| check | measured | threshold | verdict |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % c for c in checks]
    lines += ["", "## The model", "",
              "- %s (latent dim %d, %d training poses)" % (
                  model.directory, model.z_dim, len(model.latents)),
              "- held-out IWAE bound: %.3f nats per pose (normalised units)" % held.get(
                  "iwae_bound", float("nan")),
              "- held-out reconstruction RMSE: %.4f rad (max abs error %.3f rad)" % (
                  held.get("rmse", float("nan")), held.get("max_abs_error", float("nan"))),
              "- did it learn? %s" % _learned(report.get("diagnosis"), model.z_dim),
              "- encode/decode services: %s (round-trip latent error %.2e)" % (
                  "ok" if services["encode_ok"] and services["decode_ok"] else "FAILED",
                  services["round_trip_latent_error"]), "",
              "## Geodesics between pose pairs whose straight latent line crosses the hole",
              "",
              "| pair | straight line | graph | refined | graph round trip | refine round "
              "trip | start / goal offset | largest step | duration |",
              "|---|---|---|---|---|---|---|---|---|"]
    for k, r in enumerate(results):
        lines.append("| %d: %d-%d | %.3f | %.3f | %.3f | %.1f ms | %.1f ms | %.3f / %.3f rad "
                     "| %.3f rad | %.2f s |" % (
                         k + 1, *r["pair"], r["straight_line_length"], r["graph_length"],
                         r["refined_length"], r["graph_round_trip_ms"],
                         r["refine_round_trip_ms"], r["start_offset"], r["goal_offset"],
                         r["max_joint_step"], r["duration"]))
    lines += ["", "Lengths are decoded (Riemannian) lengths in radians of joint motion.",
              "Start/goal offset: how far the model's reconstruction of each requested pose "
              "is (largest joint); it is carried along the path, so every trajectory starts "
              "and ends exactly at the requested poses.",
              "", "Figures: latent_geodesics.png (pairs labelled, o start, * goal, the data "
              "hole's poses in magenta), joint_angles.png (pair 1; joint velocities against "
              "their limits), rviz.png (rviz on a virtual screen: the robot model "
              "following pair 1's trajectory, the latent path and the MF map). "
              "Trajectories: geodesics.bag."]
    if rounds:
        lines += ["", "## Active learning with the simulated demonstrator", "",
                  "| round | demonstrations (refused) | total | smoothness | max log MF | "
                  "held-out RMSE |", "|---|---|---|---|---|---|"]
        for r in rounds:
            lines.append("| %d | %d (%d) | %d | %.3f | %.3f | %.4f |" % (
                r["round"], r["demonstrations"], r["refused"], r["total"], r["smoothness"],
                r["max_log_mf"], r["held_out_rmse"]))
        lines += ["", "Round 0 is the initial model. Smoothness: largest joint step / mean "
                  "step along the decoded geodesics between pose pairs from the data whose "
                  "straight latent line crosses the largest gaps (1 = even; lower is better). "
                  "Figures: active_learning_queries.png, active_learning_metrics.png; store: "
                  "active_learning/demonstrations.db."]
    lines += ["", "Total demo time: %.0f s" % seconds, ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    summary = [{k: v for k, v in r.items() if k not in ("graph_path", "refined_path",
                                                         "trajectory", "joint_names")}
               for r in results]
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"held_out": held, "services": services, "geodesics": summary,
                   "checks": checks}, f, indent=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--rounds", type=int, default=3, help="active-learning rounds")
    args = p.parse_args(argv)
    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    model, model_dir, data_path = default_model(args.out, args.epochs)
    pairs = hole_crossing_pairs(model.latents)
    graph = LatentGraph(model, model.latents)   # for the figures' "leaves the data" check
    with ros_processes(os.path.join(args.out, "ros.log")) as ros:
        server = ros.launch("latent_geodesics", "geodesic_server.launch",
                            model_dir=os.path.abspath(model_dir))
        bag = ros.start(["rosbag", "record", "-O", os.path.join(args.out, "geodesics.bag")]
                        + TOPICS)
        data = np.load(data_path)["data"]
        services, results = run_queries(model, pairs, data)
        ros.end(bag)
        screenshot = rviz_screenshot(ros, args.out, first_pair(model, pairs, data))
        print(screenshot[1])
        ros.end(server)
        write_figures(model, graph, results, args.out, JointLimits.uniform(
            model.joint_names, Settings.max_joint_velocity, Settings.max_joint_acceleration))
        print("active learning: %d rounds with the simulated demonstrator..." % args.rounds)
        rounds = run_active_learning(ros, args.out, model_dir, data_path, args.rounds)
    services["rviz"] = screenshot[1]
    write_report(model, graph, services, results, args.out, time.time() - start, rounds)
    print(open(os.path.join(args.out, "report.md")).read())
    if not all(r["refined_length"] <= r["straight_line_length"] for r in results):
        sys.exit("a geodesic came out longer than its straight line")
