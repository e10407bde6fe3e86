"""The demo as a ROS client: calls the geodesic server's services and action, takes
rviz's picture of a served geodesic, and runs the active-learning launch file."""
import os
import shutil
import time

import numpy as np

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


def refine(client, goal, timeout=300.0):
    """The result of one ~nn_geodesic goal. A plain actionlib.ActionClient, not the
    SimpleActionClient: that one tracks its goal by the handle send_goal returns, so
    when the server's first status for a new goal arrives before send_goal has
    returned (a busy machine), it logs "Got a transition callback on a goal handle
    that we're not tracking" and drops that transition (ros/actionlib#206). Waiting
    on the goal's own state, which the transition callback is handed, has no such
    window."""
    import threading

    from actionlib import CommState
    done = threading.Event()
    handle = client.send_goal(goal, transition_cb=lambda gh: done.set()
                              if gh.get_comm_state() == CommState.DONE else None)
    if not done.wait(timeout):
        handle.cancel()
        raise RuntimeError("~nn_geodesic gave no result within %.0f s" % timeout)
    return handle.get_result()


def endpoints(names, q_start, q_goal):
    from latent_geodesics.msg import Endpoint
    return (Endpoint(joint_names=list(names), positions=list(map(float, q_start))),
            Endpoint(joint_names=list(names), positions=list(map(float, q_goal))))


def connect(model):
    """The server's proxies once it answers, and the encode/decode checks."""
    import actionlib
    import rospy

    from latent_geodesics.msg import NNGeodesicAction
    from latent_geodesics.srv import Decode, Encode, GraphGeodesic

    rospy.init_node("latent_geodesics_demo", anonymous=True)
    for name in ("encode", "decode", "graph_geodesic"):
        rospy.wait_for_service(SERVER + "/" + name, timeout=180)
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic, persistent=True)
    nn = actionlib.ActionClient(SERVER + "/nn_geodesic", NNGeodesicAction)
    if not nn.wait_for_server(rospy.Duration(60)):
        raise RuntimeError("the server's ~nn_geodesic action did not come up within 60 s")
    decode = rospy.ServiceProxy(SERVER + "/decode", Decode)
    dec = decode(latent=list(map(float, model.latents[0])))
    enc = rospy.ServiceProxy(SERVER + "/encode", Encode)(joint_names=dec.joint_names,
                                                          positions=dec.positions)
    again = decode(latent=enc.latent)
    # Measured on the poses: with more latent dimensions than the demonstrations need,
    # codes that differ along a direction the decoder ignores decode alike.
    services = {"decode_ok": dec.success and again.success, "encode_ok": enc.success,
                "round_trip_error": float(np.abs(np.subtract(again.positions,
                                                             dec.positions)).max())}
    return graph, nn, services


def run_queries(model, pairs, data, demos):
    """Call the server as a client would, between recorded poses (joint
    configurations, as a robot asks); returns per-pair results and timings.
    demos[k]: the recorded demonstration between pair k's poses (for figures)."""
    import rospy

    from latent_geodesics.msg import NNGeodesicGoal
    graph, nn, services = connect(model)
    rospy.sleep(1.0)  # let rosbag subscribe before anything is published
    results = []
    for (i, j), demo in zip(pairs, demos):
        start, goal = endpoints(model.joint_names, data[i], data[j])
        t0 = time.perf_counter()
        g = graph(start=start, goal=goal, publish=True)
        graph_ms = 1e3 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = refine(nn, NNGeodesicGoal(start=start, goal=goal, publish=True))   # defaults
        refine_ms = 1e3 * (time.perf_counter() - t0)
        if not (g.success and r.success):
            raise RuntimeError("geodesic query failed: %s / %s" % (g.message, r.message))
        results.append(pair_result(g, r, data[i], data[j], demo))
        results[-1].update(pair=[int(i), int(j)], graph_round_trip_ms=graph_ms,
                           refine_round_trip_ms=refine_ms)
        rospy.sleep(0.2)
    return services, results


def pair_result(g, r, q_start, q_goal, demo):
    """One pair's numbers (and curves for the figures) from the graph geodesic g and
    the refined one r the server answered."""
    from demo.task import through_box
    from latent_geodesics.serving.fidelity import chord, largest_deviation
    q = positions(r.trajectory)
    return {
        "data_distance": r.stats.data_distance, "graph_data_distance": g.stats.data_distance,
        "chord_data_distance": r.stats.chord_data_distance,
        "mean_data_distance": r.stats.data_distance_mean,
        "chord_mean_data_distance": r.stats.chord_data_distance_mean,
        "data_spacing": r.stats.data_spacing, "metric_candidate": g.stats.candidate,
        "demonstration_deviation": largest_deviation(q, demo),
        "chord_demonstration_deviation": largest_deviation(chord(q_start, q_goal), demo),
        "chord_through_box": through_box(chord(q_start, q_goal, 0.01)),
        "served_through_box": through_box(q),
        "joint_path_length": float(np.linalg.norm(np.diff(q, axis=0), axis=1).sum()),
        "chord_length": float(np.linalg.norm(q_goal - q_start)),
        "straight_line_length": g.straight_line_length,
        "graph_length": g.length, "refined_length": r.length,
        "refine_iterations": r.stats.iterations, "refine_message": r.message,
        "refined_candidate": r.stats.candidate,
        "start_offset": r.stats.start_offset, "goal_offset": r.stats.goal_offset,
        "endpoint_error": float(max(np.abs(q[0] - q_start).max(),
                                    np.abs(q[-1] - q_goal).max())),
        "max_joint_step": r.stats.max_joint_step, "duration": r.stats.duration,
        "max_jerk": largest_jerk(r.trajectory), "bridges": g.stats.bridges,
        "graph_path": np.reshape(g.latent_path, (-1, g.latent_dim)),
        "refined_path": np.reshape(r.latent_path, (-1, r.latent_dim)),
        "demonstration": np.asarray(demo), "trajectory": r.trajectory,
        "joint_names": list(r.trajectory.joint_names)}


def largest_jerk(trajectory):
    """rad/s^3: the largest change of a joint's acceleration per second between
    trajectory points (what a controller's smoothness limit would see)."""
    t = np.array([p.time_from_start.to_sec() for p in trajectory.points])
    a = np.array([p.accelerations for p in trajectory.points])
    if a.size == 0 or len(t) < 2:
        return float("nan")
    return float((np.abs(np.diff(a, axis=0)) / np.diff(t).clip(1e-9)[:, None]).max())


def positions(trajectory):
    return np.array([p.positions for p in trajectory.points])


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


def rviz_screenshot(ros, out, pair_endpoints, seconds=10):
    """rviz on a virtual screen (Xvfb) showing the robot following a geodesic, in
    several poses along it; saved as out/rviz.png. Returns (path or None, what
    happened, robot pixels)."""
    import rospy

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
        answer = graph(start=start, goal=goal, publish=True)
        time.sleep(2.0)
    answer = graph(start=start, goal=goal, publish=True)   # the player starts it over now
    path = os.path.join(out, "rviz.png")
    try:
        shot = poses_along(display, answer.trajectory.points[-1].time_from_start.to_sec())
        atomic_write(path, lambda f: shot.save(f, format="PNG"))
        pixels = robot_pixels(path)
        result = path, "%d robot pixels in the 3-D view" % pixels, pixels
    except OSError as e:
        result = None, "no screenshot: %s" % e, 0
    for proc in (view, xvfb):
        ros.end(proc)
    os.environ.pop("DISPLAY", None)
    return result


def poses_along(display, duration, frames=5):
    """Screen shots taken along one playback of a motion `duration` s long, laid on
    each other (the lighter pixel wins: the white robot in each pose on rviz's dark
    background)."""
    from PIL import ImageChops, ImageGrab
    shot, start = None, time.time()
    for k in range(frames):
        time.sleep(max(0.0, start + k * duration / (frames - 1) - time.time()))
        frame = ImageGrab.grab(xdisplay=display)
        shot = frame if shot is None else ImageChops.lighter(shot, frame)
    return shot
