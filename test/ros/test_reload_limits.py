"""~reload reads robot_description again: a URDF set after the server started
applies from the reload on, and the response says where the limits come from.

Needs ROS (a roscore on its own port): run by test/run_rostests.sh with pytest."""
import os

import pytest
import rospy

from latent_geodesics.data import arm_dataset
from latent_geodesics.model import save_model
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.srv import Reload
from latent_geodesics.training import train_iwae

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def roscore(tmp_path_factory):
    with ros_processes(str(tmp_path_factory.mktemp("ros") / "ros.log")) as ros:
        yield ros


def test_reload_applies_a_urdf_set_after_the_start(roscore, tmp_path):
    arm = arm_dataset(n_demos=40, seed=1)
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=5, device="cpu", progress=False)
    save_model(model, str(tmp_path / "m"), model.meta)
    server = roscore.start(["rosrun", "latent_geodesics", "geodesic_server",
                            "__name:=reload_server", "_model_dir:=%s" % (tmp_path / "m"),
                            "_device:=cpu"])
    try:
        rospy.init_node("test_reload_limits", anonymous=True)
        rospy.wait_for_service("/reload_server/reload", timeout=120)
        reload = rospy.ServiceProxy("/reload_server/reload", Reload)
        before = reload(model_dir="")
        assert before.success and "joint limits from parameters" in before.message
        with open(os.path.join(ROOT, "urdf", "panda.urdf")) as f:
            rospy.set_param("/robot_description", f.read())
        after = reload(model_dir="")
        assert after.success and "joint limits from urdf" in after.message, after.message
    finally:
        if rospy.has_param("/robot_description"):
            rospy.delete_param("/robot_description")
        roscore.end(server)
