"""A teacher whose service exists but never answers: the learner says so after
~teacher_timeout, refuses that query (the reason in the store) and goes on with
the next one, rather than stalling the loop.

Needs ROS (a roscore on its own port): run by test/run_rostests.sh with pytest."""
import os
import sys
import time

import numpy as np
import pytest

from latent_geodesics.data import two_arcs
from latent_geodesics.learning.store import DemoStore
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.training import train_iwae
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.sim.arcs import JOINT_NAMES

SILENT_TEACHER = """
import time, rospy
from latent_geodesics.srv import Demonstrate
rospy.init_node("silent_teacher")
rospy.Service("~demonstrate", Demonstrate, lambda req: time.sleep(3600))
rospy.spin()
"""


@pytest.fixture(scope="module")
def roscore(tmp_path_factory):
    with ros_processes(str(tmp_path_factory.mktemp("ros") / "ros.log")) as ros:
        yield ros


def test_a_teacher_that_never_answers_gets_its_queries_refused(roscore, tmp_path):
    data = two_arcs(n=400)
    model, _ = train_iwae(data, JOINT_NAMES, epochs=5, device="cpu", progress=False)
    save_model(model, str(tmp_path / "m0"), model.meta)
    np.savez(str(tmp_path / "data.npz"), data=data, joint_names=np.array(JOINT_NAMES))
    teacher = roscore.start([sys.executable, "-c", SILENT_TEACHER])
    work = str(tmp_path / "work")
    learner = roscore.start([
        "rosrun", "latent_geodesics", "active_learner", "__name:=learner_timeout",
        "_model_dir:=%s" % (tmp_path / "m0"), "_initial_data:=%s" % (tmp_path / "data.npz"),
        "_work_dir:=%s" % work, "_auto:=true", "_rounds:=1", "_queries_per_round:=2",
        "_demonstrator:=/silent_teacher", "_teacher_timeout:=2.0", "_reload_timeout:=2.0",
        "_device:=cpu", "_epochs:=1"])
    db = os.path.join(work, "demonstrations.db")
    deadline = time.time() + 120
    statuses = []
    while time.time() < deadline:
        if os.path.isfile(db):
            try:
                statuses = DemoStore(db).queries(1)[1]
            except Exception:   # the round is not recorded yet
                statuses = []
            if statuses and all(s == "refused" for s in statuses):
                break
        time.sleep(1.0)
    for proc in (learner, teacher):
        roscore.end(proc)
    assert statuses == ["refused", "refused"]       # both asked, neither stalled the loop
    store = DemoStore(db)
    messages = [m for (m,) in store.db.execute("SELECT message FROM queries WHERE round=1")]
    assert all("did not answer within 2 s" in m for m in messages), messages
