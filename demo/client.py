"""The demo as a ROS client: calls the geodesic server's services and action, takes
rviz's picture of a served geodesic, and runs the active-learning launch file."""
import os
import shutil
import time

import numpy as np

from demo.figures import write_active_learning_figures
from latent_geodesics.files import atomic_write

SERVER = "/geodesic_server"


TOPICS = [SERVER + "/trajectory", SERVER + "/latent_path"]


def closed_bag(path, timeout=30):
    """path once rosbag has closed it: its recorder (a child of `rosbag record`) writes
    path.active and renames it after the wrapper has already exited."""
    deadline = time.time() + timeout
    while not os.path.exists(path) or os.path.exists(path + ".active"):
        if time.time() > deadline:
            raise RuntimeError("rosbag did not close %s within %d s" % (path, timeout))
        time.sleep(0.2)
    return path


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
        shot = ImageGrab.grab(xdisplay=display)
        atomic_write(path, lambda f: shot.save(f, format="PNG"))
        pixels = robot_pixels(path)
        result = path, "%d robot pixels in the 3-D view" % pixels, pixels
    except OSError as e:
        result = None, "no screenshot: %s" % e, 0
    for proc in (view, xvfb):
        ros.end(proc)
    os.environ.pop("DISPLAY", None)
    return result


def first_pair(model, pairs, data):
    from latent_geodesics.msg import Endpoint
    i, j = pairs[0]
    return (Endpoint(joint_names=model.joint_names, positions=list(map(float, data[i]))),
            Endpoint(joint_names=model.joint_names, positions=list(map(float, data[j]))))


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

    from latent_geodesics.learning.store import DemoStore
    from latent_geodesics.msg import RoundMetrics
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
