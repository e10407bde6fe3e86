"""A relaunched active learner hands the server the newest finished round's model
and republishes that round's metrics (latched).

Needs ROS (a roscore on its own port): run by test/run_rostests.sh with pytest."""
import os
import subprocess
import time

import numpy as np
import pytest
import rospy
import torch

from latent_geodesics.data import two_arcs
from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
from latent_geodesics.learning.selection import evaluate
from latent_geodesics.learning.store import DemoStore
from latent_geodesics.model.iwae import load_model, save_model
from latent_geodesics.model.training import train_iwae
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.sim.arcs import JOINT_NAMES, arc_pose
from latent_geodesics.srv import Decode


@pytest.fixture(scope="module")
def roscore(tmp_path_factory):
    with ros_processes(str(tmp_path_factory.mktemp("ros") / "ros.log")) as ros:
        yield ros


def decoded(model_dir, z):
    with torch.no_grad():
        return load_model(model_dir, "cpu").decode(torch.tensor([z])).double().numpy()[0]


def test_relaunch_serves_the_newest_round(roscore, tmp_path):
    data = two_arcs(n=400)
    model, _ = train_iwae(data, JOINT_NAMES, epochs=5, device="cpu", progress=False)
    initial, work = str(tmp_path / "m0"), str(tmp_path / "work")
    save_model(model, initial, model.meta)
    np.savez(str(tmp_path / "data.npz"), data=data, joint_names=np.array(JOINT_NAMES))
    # One finished round, as a learner that was then stopped leaves it.
    os.makedirs(work)
    store = DemoStore(os.path.join(work, "demonstrations.db"))
    store.seed(data, JOINT_NAMES)
    pairs = arc_pose(np.array([[-0.8, 0.8], [-0.6, 1.0]]))   # across the gap

    def metrics(model_dir):
        m = load_model(model_dir, "cpu")
        return evaluate(m, LatentGraph(m, m.latents), pairs, data[:100])

    learner = ActiveLearner(store, work, initial,
                            lambda q: arc_pose(q[0] + np.linspace(-0.05, 0.05, 11)),
                            LoopConfig(1, 2, epochs=2, device="cpu"), evaluate=metrics,
                            log=lambda m: None)
    learner.run()
    newest = learner.model_dir()
    assert newest.endswith("round_1")
    store.close()

    launch = roscore.launch("latent_geodesics", "active_learning.launch", system="none",
                            auto="false", model_dir=initial,
                            initial_data=str(tmp_path / "data.npz"), work_dir=work,
                            device="cpu", output="log")
    try:
        rospy.wait_for_service("/geodesic_server/decode", timeout=120)
        decode = rospy.ServiceProxy("/geodesic_server/decode", Decode)
        z = [0.1, -0.2]
        want, before = decoded(newest, z), decoded(initial, z)
        assert np.abs(want - before).max() > 1e-4          # the round changed the model
        deadline, served = time.time() + 120, None
        while time.time() < deadline:
            served = np.array(decode(latent=z).positions)
            if np.abs(served - want).max() < 1e-5:
                break
            time.sleep(0.5)
        assert np.abs(served - want).max() < 1e-5, "the server kept the initial model"
        echo = subprocess.run(["rostopic", "echo", "-n", "1", "/active_learner/metrics"],
                              capture_output=True, text=True, timeout=60)
        assert "round: 1" in echo.stdout and "round_1" in echo.stdout, echo.stdout
    finally:
        roscore.end(launch)
