"""ROS round trip of ~graph_geodesic vs the same query in-process, the ~nn_geodesic
action's (the default refinement) round trip, and node start-up with and without
the graph cache, on an arm model with N = 10,000 latent nodes. Queries are timed
once the node has finished starting (its latched MF map is out)."""
import os
import tempfile
import time

import numpy as np

from latent_geodesics.data import arm_dataset
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.training import train_iwae
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.serving.engine import Engine, Settings

SERVICE = "/geodesic_server/graph_geodesic"


def start_server(ros, rospy, model_dir):
    """Launch the server; seconds until its geodesic service answers."""
    start = time.perf_counter()
    proc = ros.launch("latent_geodesics", "geodesic_server.launch", model_dir=model_dir)
    rospy.wait_for_service(SERVICE, timeout=300)
    return proc, time.perf_counter() - start


def ros_round_trip(results_dir, queries=300, refinements=60):
    import actionlib
    import rospy
    from sensor_msgs.msg import Image

    from latent_geodesics.msg import Endpoint, NNGeodesicAction, NNGeodesicGoal
    from latent_geodesics.srv import GraphGeodesic

    work = tempfile.mkdtemp(prefix="bench_ros_")
    arm = arm_dataset(n_demos=400, hole=True, seed=5)           # 10,000 poses
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=30, progress=False)
    model_dir = os.path.join(work, "model")
    save_model(model, model_dir, model.meta)
    z = model.latents
    rng = np.random.default_rng(0)
    pairs = [rng.choice(len(z), 2, replace=False) for _ in range(queries)]

    with ros_processes(os.path.join(work, "ros.log")) as ros:
        rospy.init_node("bench_round_trip", anonymous=True)
        proc, no_cache = start_server(ros, rospy, model_dir)
        ros.end(proc)
        while True:  # wait until the old node has left the master
            try:
                rospy.wait_for_service(SERVICE, timeout=0.2)
                time.sleep(0.2)
            except rospy.ROSException:
                break
        proc, cached = start_server(ros, rospy, model_dir)
        # Steady state: the node draws its MF map (seconds of CPU) once its services
        # are up; timed queries start after it is published, as on a running robot.
        rospy.wait_for_message("/geodesic_server/mf_map", Image, timeout=300)
        call = rospy.ServiceProxy(SERVICE, GraphGeodesic, persistent=True)
        ros_times = []
        for i, j in pairs:
            start = time.perf_counter()
            res = call(start=Endpoint(latent=list(z[i])), goal=Endpoint(latent=list(z[j])))
            ros_times.append(time.perf_counter() - start)
            assert res.success, res.message
        action = actionlib.SimpleActionClient("/geodesic_server/nn_geodesic", NNGeodesicAction)
        action.wait_for_server(rospy.Duration(60))
        refine_times = []
        for i, j in pairs[:refinements]:
            start = time.perf_counter()
            action.send_goal(NNGeodesicGoal(start=Endpoint(latent=list(z[i])),
                                            goal=Endpoint(latent=list(z[j]))))
            action.wait_for_result(rospy.Duration(60))
            refine_times.append(time.perf_counter() - start)
            assert action.get_result().success, action.get_result().message

    engine = Engine(model_dir, Settings(), log=lambda m: None)
    local = []
    for i, j in pairs:
        start = time.perf_counter()
        engine.graph_geodesic(([], [], z[i]), ([], [], z[j]))
        local.append(time.perf_counter() - start)
    ms = lambda v, q: 1e3 * float(np.percentile(v, q))  # noqa: E731
    return {"N": len(z), "queries": queries, "ros_p50_ms": ms(ros_times, 50),
            "ros_p99_ms": ms(ros_times, 99), "inproc_p50_ms": ms(local, 50),
            "inproc_p99_ms": ms(local, 99), "refine_ros_p50_ms": ms(refine_times, 50),
            "refine_ros_p99_ms": ms(refine_times, 99), "startup_no_cache_s": no_cache,
            "startup_cache_s": cached}
