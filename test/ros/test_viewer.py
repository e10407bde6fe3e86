"""The viewer beside a robot that is not the demo's Panda: the robot's own
robot_description and /tf stay untouched, and the geodesic server launched with
rviz:=true keeps serving (here without a screen, so rviz itself cannot start).

Needs ROS (a roscore on its own port): run by test/run_rostests.sh with pytest."""
import time

import numpy as np
import pytest
import rospy
from tf2_msgs.msg import TFMessage

from latent_geodesics.data import two_arcs
from latent_geodesics.model.training import train_iwae
from latent_geodesics.msg import Endpoint
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.sim.arcs import JOINT_NAMES
from latent_geodesics.srv import GraphGeodesic

OTHER_ROBOT = """<robot name="other_robot">
  <link name="base"/><link name="upper"/><link name="fore"/><link name="hand"/>
  <joint name="joint_1" type="revolute"><parent link="base"/><child link="upper"/>
    <limit lower="-3" upper="3" velocity="1" effort="1"/></joint>
  <joint name="joint_2" type="revolute"><parent link="upper"/><child link="fore"/>
    <origin xyz="0 0 0.5"/><limit lower="-3" upper="3" velocity="1" effort="1"/></joint>
  <joint name="joint_3" type="revolute"><parent link="fore"/><child link="hand"/>
    <origin xyz="0 0 0.4"/><limit lower="-3" upper="3" velocity="1" effort="1"/></joint>
</robot>"""


@pytest.fixture(scope="module")
def roscore(tmp_path_factory):
    with ros_processes(str(tmp_path_factory.mktemp("ros") / "ros.log")) as ros:
        yield ros


def test_viewer_leaves_the_robots_description_and_tf_alone(roscore, tmp_path, monkeypatch):
    from latent_geodesics.model.iwae import save_model
    data = two_arcs(n=400)
    model, _ = train_iwae(data, JOINT_NAMES, epochs=5, device="cpu", progress=False)
    save_model(model, str(tmp_path / "model"), model.meta)
    rospy.init_node("test_viewer", anonymous=True)
    rospy.set_param("/robot_description", OTHER_ROBOT)
    frames = set()
    record = lambda msg: frames.update(  # noqa: E731
        f for t in msg.transforms for f in (t.header.frame_id, t.child_frame_id))
    subs = [rospy.Subscriber(topic, TFMessage, record) for topic in ("/tf", "/tf_static")]
    monkeypatch.delenv("DISPLAY", raising=False)
    server = roscore.launch("latent_geodesics", "geodesic_server.launch",
                            model_dir=str(tmp_path / "model"), device="cpu", rviz="true",
                            root_link="base")
    rospy.wait_for_service("/geodesic_server/graph_geodesic", timeout=120)
    call = rospy.ServiceProxy("/geodesic_server/graph_geodesic", GraphGeodesic)
    z = model.latents
    for _ in range(4):   # published for the viewer's player while rviz tries to start
        res = call(start=Endpoint(latent=list(map(float, z[0]))),
                   goal=Endpoint(latent=list(map(float, z[-1]))), publish=True)
        assert res.success, res.message
        time.sleep(1.0)
    assert server.poll() is None                                   # still serving
    assert rospy.get_param("/robot_description") == OTHER_ROBOT    # never overwritten
    assert frames, "the ghost robot published no transforms"
    foreign = [f for f in frames if not (f.startswith("ghost/") or f == "latent")]
    assert not foreign, "frames without the ghost/ prefix on /tf: %s" % foreign
    assert {"ghost/base", "ghost/hand"} <= frames   # the robot's own URDF, prefixed
    for sub in subs:
        sub.unregister()
    assert np.isfinite(res.length)
