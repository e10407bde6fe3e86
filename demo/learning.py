"""The demo's active learning: the server and the learner of active_learning.launch
with system:=none (no simulator node: any teacher will do), taught by the demo's own
teacher, a Demonstrate service of this process (task.RouteTeacher); and what a user
sees after each round: the served motion for carries to places in the hole, against
the carry the teacher would have shown there."""
import os
import shutil
import time

import numpy as np

from demo.client import SERVER, endpoints, positions
from demo.task import HOLE, hole_places, sideways

TEACHER = "/demo_teacher"   # the learner's `demonstrator`: it calls TEACHER/demonstrate


def serve_teacher(teacher, period=0.1):
    """TEACHER/demonstrate (srv/Demonstrate) answered by `teacher`, in this process."""
    import rospy
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from latent_geodesics.learning.teachers import Refused, teacher_query
    from latent_geodesics.srv import Demonstrate, DemonstrateResponse

    def handle(req):
        try:
            demo = teacher.demonstrate(teacher_query(teacher.joint_names, req.joint_names,
                                                     req.positions))
        except Refused as e:
            return DemonstrateResponse(success=False, message="refused: %s" % e)
        msg = JointTrajectory(joint_names=teacher.joint_names)
        msg.points = [JointTrajectoryPoint(positions=q.tolist(),
                                           time_from_start=rospy.Duration.from_sec(i * period))
                      for i, q in enumerate(demo)]
        return DemonstrateResponse(success=True, message="%d points" % len(demo),
                                   demonstration=msg)
    return rospy.Service(TEACHER + "/demonstrate", Demonstrate, handle)


def hole_motions(teacher, places):
    """Per place in the hole: the server's graph geodesic between the teacher's pick
    and place there (a carry nobody demonstrated before the rounds), measured
    against the teacher's own carry: its largest joint deviation from it, how far
    the hand strays along the table, and its distance to the recorded data."""
    import rospy

    from latent_geodesics.serving.fidelity import chord, largest_deviation
    from latent_geodesics.srv import GraphGeodesic
    rospy.wait_for_service(SERVER + "/graph_geodesic", timeout=180)
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic)
    out = []
    for place in places:
        truth = teacher.route(place)
        start, goal = endpoints(teacher.joint_names, truth[0], truth[-1])
        g = graph(start=start, goal=goal)
        if not g.success:   # the model cannot reproduce the pick or the place yet
            out.append({"place": float(place), "refused": g.message})
            continue
        q = positions(g.trajectory)
        out.append({"place": float(place), "deviation": largest_deviation(q, truth),
                    "sideways": sideways(q, place), "data_distance": g.stats.data_distance,
                    "chord_deviation": largest_deviation(chord(truth[0], truth[-1]), truth),
                    "positions": q, "times": [p.time_from_start.to_sec()
                                              for p in g.trajectory.points]})
    return out


def round_summary(m, store, teacher, hole):
    """A RoundMetrics message, the store's record of its round and the served
    motions in the hole after it, as a dict."""
    info = store.round_info(m.round) if m.round >= 1 else None
    queries, refused, places = None, None, None
    if info is not None:
        queries, refused = store.query_latents(m.round)
        places = [teacher.nearest(q)[0] for q in store.queries(m.round)[0]]
    return {"round": m.round, "asked_by": info["model_dir"] if info else None,
            "queries": queries, "query_refused": refused, "query_places": places,
            "queries_in_hole": None if places is None else
            int(sum(HOLE[0] <= p <= HOLE[1] for p in places)),
            "demonstrations": m.demonstrations, "refused": m.refused,
            "total": m.total_demonstrations, "smoothness": m.smoothness,
            "max_step": m.max_step, "max_log_mf": m.max_log_mf,
            "held_out_rmse": m.held_out_rmse, "model_dir": m.model_dir, "hole": hole}


def run_active_learning(ros, out, model_dir, data_path, settings, teacher):
    """active_learning.launch with the settings that fill gaps (retrain from scratch,
    as many epochs as the first model) and the demo's teacher; after each round
    (round 0: the initial model) the served motions in the hole are asked for.
    settings: rounds, queries, epochs, hole_places. Runs on the demo's roscore once
    the geodesic server has been stopped; returns the rounds' summaries."""
    import rospy

    from latent_geodesics.learning.store import DemoStore
    from latent_geodesics.msg import RoundMetrics
    work = os.path.abspath(os.path.join(out, "active_learning"))
    shutil.rmtree(work, ignore_errors=True)   # a fresh loop on every run
    metrics, hole = {}, {}
    service = serve_teacher(teacher)
    sub = rospy.Subscriber("/active_learner/metrics", RoundMetrics,
                           lambda m: metrics.__setitem__(m.round, m))
    launched = ros.launch("latent_geodesics", "active_learning.launch",
                          model_dir=os.path.abspath(model_dir),
                          initial_data=os.path.abspath(data_path), work_dir=work,
                          system="none", demonstrator=TEACHER, rounds=settings["rounds"],
                          queries_per_round=settings["queries"], retrain="scratch",
                          epochs=settings["epochs"], output="log")
    places = hole_places(settings["hole_places"])
    deadline = time.time() + 300 + 300 * settings["rounds"]
    while len(hole) <= settings["rounds"] and time.time() < deadline \
            and launched.poll() is None:
        for r in sorted(set(metrics) - set(hole)):   # that round's model is served now
            hole[r] = hole_motions(teacher, places)
        time.sleep(0.5)
    sub.unregister()
    service.shutdown()
    ros.end(launched)
    if sorted(hole) != list(range(settings["rounds"] + 1)):
        raise RuntimeError("active learning finished %d of %d rounds; see %s/ros.log"
                           % (max(0, len(hole) - 1), settings["rounds"], out))
    store = DemoStore(os.path.join(work, "demonstrations.db"))
    summary = [round_summary(metrics[r], store, teacher, hole[r]) for r in sorted(metrics)]
    store.close()
    return summary


def worst_hole(summary, key):
    """The largest `key` over a round's places in the hole (inf: one was refused)."""
    return max((h.get(key, np.inf) for h in summary["hole"]), default=np.nan)
