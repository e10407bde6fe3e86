"""URDF joint limits the ROS 2 way: robot_description as robot_state_publisher
offers it (a latched, transient-local topic) before the server starts, and a
changed description applied by ~/reload. The served trajectories keep the limits."""
import re

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from latent_geodesics.msg import Endpoint
from latent_geodesics.srv import Encode, GraphGeodesic, Reload

from .conftest import ROOT

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
S = "/urdf_server/"


def panda_urdf(joint1_velocity):
    urdf = (ROOT / "urdf" / "panda.urdf").read_text()
    return re.sub(r'(<joint name="panda_joint1".*?velocity=")[0-9.]+', r"\g<1>%g"
                  % joint1_velocity, urdf, count=1, flags=re.S)


def urdf_in_force(output):
    """Loaded with the URDF's limits at the start, or a late one applied: the node
    says so once the reload has swapped the model in (the load's own log line
    comes before the swap)."""
    start, ready, serving = output.partition("urdf_server ready")
    return ready and ("joint limits from urdf" in start
                      or "robot_description received: joint limits from urdf" in serving)


def peak_velocity(res, joint):
    return max(abs(p.velocities[joint]) for p in res.trajectory.points)


def test_limits_from_the_latched_robot_description(fixture_dir, start_node, client,
                                                   arm_data):
    q, names = arm_data
    i, j = int(np.argmin(q[:, 0])), int(np.argmax(q[:, 0]))   # joint 1 moves most
    pub = client.node.create_publisher(String, "/robot_description", LATCHED)
    pub.publish(String(data=panda_urdf(0.2)))
    node = start_node("server", "--ros-args", "-r", "__node:=urdf_server",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", name="urdf_server")
    client.wait(Encode, S + "encode")
    # At the start, or applied when it arrives later (discovery can take seconds).
    client.spin_for(60, until=lambda: urdf_in_force(node.output()))
    request = dict(start=Endpoint(joint_names=names, positions=q[i].tolist()),
                   goal=Endpoint(joint_names=names, positions=q[j].tolist()))
    slow = client.call(GraphGeodesic, S + "graph_geodesic", **request)
    assert slow.success, slow.message
    assert urdf_in_force(node.output()), node.output()[-3000:]
    assert peak_velocity(slow, 0) <= 0.2 * (1 + 1e-6)
    assert slow.stats.duration >= (q[j, 0] - q[i, 0]) / 0.2

    pub.publish(String(data=panda_urdf(2.0)))   # a new description: counted at ~/reload
    client.spin_for(1.0)
    reloaded = client.call(Reload, S + "reload", timeout=120, model_dir="")
    assert reloaded.success and "joint limits from urdf" in reloaded.message
    fast = client.call(GraphGeodesic, S + "graph_geodesic", **request)
    assert fast.success
    assert fast.stats.duration < slow.stats.duration   # joint 1 no longer holds it back
    assert np.allclose(fast.trajectory.points[-1].positions, q[j])
    client.node.destroy_publisher(pub)


ENTITY_ATTACK = """<?xml version="1.0"?>
<!DOCTYPE robot [
  <!ENTITY % local SYSTEM "file:///usr/share/xml/schema/xml-core/tr9401.dtd">
  <!ENTITY secret SYSTEM "file:///etc/passwd">
]>
<robot name="x"><joint name="&secret;" type="fixed"/></robot>"""


def test_bad_late_robot_descriptions_are_refused_and_the_server_serves_on(
        fixture_dir, start_node, client, arm_data):
    q, names = arm_data
    node = start_node("server", "--ros-args", "-r", "__node:=bad_urdf_server",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=0.0",
                      name="bad_urdf_server")
    client.wait(Encode, "/bad_urdf_server/encode")
    client.spin_for(60, until=lambda: "bad_urdf_server ready" in node.output())
    pub = client.node.create_publisher(String, "/robot_description", LATCHED)
    other_robot = (ROOT / "urdf" / "panda.urdf").read_text().replace("panda_joint", "other_joint")
    for refused, urdf in enumerate(("<robot name='broken'><joint", ENTITY_ATTACK, other_robot), 1):
        pub.publish(String(data=urdf))
        client.spin_for(30, until=lambda n=refused: node.output().count(
            "robot_description refused") >= n)
        assert node.output().count("robot_description refused") == refused, node.output()[-3000:]
        assert node.proc.poll() is None, node.output()[-3000:]
        res = client.call(Encode, "/bad_urdf_server/encode", joint_names=names,
                          positions=q[0].tolist())
        assert res.success, res.message
    assert "root:" not in node.output()   # /etc/passwd's first line never reaches the log
    pub.publish(String(data=panda_urdf(0.2)))   # a good one after bad ones: applied at once
    client.spin_for(60, until=lambda: "robot_description received: joint limits from urdf"
                    in node.output())
    assert "robot_description received: joint limits from urdf" in node.output()
    client.node.destroy_publisher(pub)
