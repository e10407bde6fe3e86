"""The robot's world on ROS 2, fed as MoveIt 2 feeds it: an object ADDed on
collision_object turns the very next ~/graph_geodesic from one through it (by the
independent dense check of the URDF's geometry) into a collision-free one; ~/scene
reports what the server holds (the `scene` file's objects from the start);
~/scene_markers draws it; an object in a frame the server cannot use is refused with a
warning naming it, one in a frame that /tf and /tf_static join to the robot's root
is placed where those transforms put it; a whole PlanningScene replaces the world;
move_group's world,
asked for at start (get_planning_scene), is known before the first request."""
import threading

import numpy as np
import pytest
import torch
import yaml
from geometry_msgs.msg import Pose, TransformStamped
from moveit_msgs.msg import CollisionObject, PlanningScene, PlanningSceneComponents
from moveit_msgs.srv import GetPlanningScene
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from shape_msgs.msg import SolidPrimitive
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from latent_geodesics.msg import Endpoint
from latent_geodesics.srv import GetScene, GraphGeodesic
from latent_geodesics.world.body import build_chain
from latent_geodesics.world.scene import Scene, Shape, WorldObject, pose_matrix
from latent_geodesics.world.verification import dense_collisions

from .conftest import ROOT

S = "/world_server/"
ROOT_FRAME = "panda_link0"
URDF = (ROOT / "urdf" / "panda.urdf").read_text()
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SCENE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_TF = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Two poses of the fixture data whose hand positions lie 0.88 m apart (y from -0.44 to
# 0.44): the motion between them sweeps the forearm and hand across the workspace.
START, GOAL = 399, 974
RADIUS = 0.05        # m, the ball put on the motion
DENSE_STEP = 0.002   # m a point of the URDF geometry moves between dense check samples
WALL = {"id": "wall", "pose": {"position": [-1.0, 0.0, 0.5]}, "shapes": [{"box": [0.1, 1.0, 1.0]}]}


@pytest.fixture(scope="module")
def server(fixture_dir, start_node, client, tmp_path_factory):
    scene_file = tmp_path_factory.mktemp("scene") / "scene.yaml"
    scene_file.write_text(yaml.safe_dump({"objects": [WALL]}))
    urdf_pub = client.node.create_publisher(String, "/world_test/robot_description", LATCHED)
    urdf_pub.publish(String(data=URDF))
    node = start_node("server", "--ros-args", "-r", "__node:=world_server",
                      "-r", "robot_description:=/world_test/robot_description",
                      "-r", "collision_object:=/world_test/collision_object",
                      "-r", "planning_scene:=/world_test/planning_scene",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=20.0",
                      "-p", "scene:=%s" % scene_file, name="world_server")
    client.wait(GetScene, S + "scene")
    yield node
    assert node.stop() == 0, node.output()[-3000:]   # a clean SIGINT
    client.node.destroy_publisher(urdf_pub)


def link_position(rows, names, link):
    """Where a link's origin is (root frame) at each configuration: pytorch_kinematics."""
    chain = build_chain(URDF).to(dtype=torch.float64)
    order = chain.get_joint_parameter_names()
    full = np.zeros((len(rows), len(order)))
    full[:, [order.index(n) for n in names]] = rows
    return chain.forward_kinematics(torch.as_tensor(full))[link].get_matrix()[:, :3, 3].numpy()


def positions(res):
    return np.array([p.positions for p in res.trajectory.points])


def sphere_object(object_id, centre, frame=ROOT_FRAME, operation=CollisionObject.ADD):
    msg = CollisionObject(id=object_id, operation=operation)
    msg.header.frame_id = frame
    msg.pose.orientation.w = 1.0
    msg.primitives = [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[RADIUS])]
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in centre)
    pose.orientation.w = 1.0
    msg.primitive_poses = [pose]
    return msg


def publish(client, kind, topic, msg):
    pub = client.node.create_publisher(kind, topic, SCENE_QOS)
    client.spin_for(30, until=lambda: pub.get_subscription_count() > 0)
    assert pub.get_subscription_count() > 0, "the server does not subscribe " + topic
    pub.publish(msg)
    return pub


def scene_after(client, version):
    """~/scene once the server holds more than `version` changes."""
    report = client.call(GetScene, S + "scene")
    for _ in range(200):
        if report.version > version:
            break
        client.spin_for(0.05)
        report = client.call(GetScene, S + "scene")
    return report


def test_an_added_object_turns_the_next_answer_collision_free(server, client, arm_data):
    q, names = arm_data
    first = client.call(GetScene, S + "scene")
    assert first.success and first.frame_id == ROOT_FRAME, first.message
    assert list(first.object_ids) == ["wall"]   # the scene file, loaded at start
    request = dict(start=Endpoint(joint_names=names, positions=q[START].tolist()),
                   goal=Endpoint(joint_names=names, positions=q[GOAL].tolist()))
    before = client.call(GraphGeodesic, S + "graph_geodesic", timeout=120, **request)
    assert before.success, before.message
    path = positions(before)
    hand = link_position(path, names, "panda_link7")
    # The ball where the hand passes farthest from both ends: on the motion, off its ends.
    away = np.minimum(np.linalg.norm(hand - hand[0], axis=1),
                      np.linalg.norm(hand - hand[-1], axis=1))
    centre = hand[int(np.argmax(away))]
    ball = WorldObject("ball", np.block([[np.eye(3), centre[:, None]], [np.zeros(3), 1.0]]),
                       (Shape.sphere(RADIUS),))
    with_ball = Scene(ROOT_FRAME, [ball])
    assert dense_collisions(URDF, names, with_ball, path, spacing=DENSE_STEP).collides

    pub = publish(client, CollisionObject, "/world_test/collision_object",
                  sphere_object("ball", centre))
    report = scene_after(client, first.version)
    assert sorted(report.object_ids) == ["ball", "wall"], server.output()[-3000:]
    assert report.updated > 0 and "ball" in report.objects_yaml
    after = client.call(GraphGeodesic, S + "graph_geodesic", timeout=120, **request)
    assert after.success, after.message
    dense = dense_collisions(URDF, names, with_ball, positions(after), spacing=DENSE_STEP)
    assert not dense.collides and dense.clearance > 0, dense
    assert 0 < after.stats.min_clearance < 0.5 and after.stats.clearance_object == "ball"
    assert np.allclose(positions(after)[[0, -1]], q[[START, GOAL]], atol=1e-9)

    drawn = []
    markers = client.node.create_subscription(MarkerArray, S + "scene_markers",
                                              drawn.append, LATCHED)
    client.spin_for(30, until=lambda: any("ball" in {k.ns for k in m.markers} for m in drawn))
    assert {k.ns for k in drawn[-1].markers} >= {"ball", "wall"}, drawn[-1:]
    client.node.destroy_subscription(markers)
    client.node.destroy_publisher(pub)


def test_an_object_in_an_unknown_frame_is_refused_naming_it(server, client):
    version = client.call(GetScene, S + "scene").version
    pub = publish(client, CollisionObject, "/world_test/collision_object",
                  sphere_object("ghost", (0.5, 0.0, 0.5), frame="camera_link"))
    client.spin_for(30, until=lambda: "ghost" in server.output())
    log = [line for line in server.output().splitlines() if "ghost" in line]
    assert log and "refused" in log[0] and "camera_link" in log[0] and " tf" in log[0], log
    report = client.call(GetScene, S + "scene")
    assert "ghost" not in report.object_ids and report.version == version
    client.node.destroy_publisher(pub)


def transform(parent, child, xyz, quaternion):
    t = TransformStamped(child_frame_id=child)
    t.header.frame_id = parent
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = xyz
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = quaternion
    return t


def test_an_object_in_a_frame_on_tf_is_placed_through_it(server, client):
    """The root -> mount on /tf_static (latched, as static_transform_publisher sends
    it), mount -> shelf on /tf: a ball 0.1 m along the shelf frame's x axis, which
    is the root's y axis after the mount's quarter turn about z."""
    half = np.sqrt(0.5)
    static = client.node.create_publisher(TFMessage, "/tf_static", LATCHED_TF)
    static.publish(TFMessage(transforms=[transform(ROOT_FRAME, "mount", (0.3, 0.0, 0.2),
                                                   (0.0, 0.0, half, half))]))
    moving = client.node.create_publisher(TFMessage, "/tf", SCENE_QOS)
    client.spin_for(30, until=lambda: moving.get_subscription_count() > 0)
    moving.publish(TFMessage(transforms=[transform("mount", "shelf", (0.0, 0.0, 0.1),
                                                   (0.0, 0.0, 0.0, 1.0))]))
    client.spin_for(1.0)
    version = client.call(GetScene, S + "scene").version
    pub = publish(client, CollisionObject, "/world_test/collision_object",
                  sphere_object("jar", (0.1, 0.0, 0.0), frame="shelf"))
    report = scene_after(client, version)
    assert "jar" in report.object_ids, server.output()[-3000:]
    jar = [o for o in yaml.safe_load(report.objects_yaml)["objects"] if o["id"] == "jar"][0]
    frame = pose_matrix(jar["pose"]["position"], jar["pose"]["orientation"])
    ball = frame @ pose_matrix(jar["shapes"][0]["position"], jar["shapes"][0]["orientation"])
    assert np.allclose(frame[:3, 3], (0.3, 0.0, 0.3), atol=1e-9), jar   # the shelf frame
    assert np.allclose(ball[:3, 3], (0.3, 0.1, 0.3), atol=1e-9), jar
    for publisher in (pub, static, moving):
        client.node.destroy_publisher(publisher)


def test_a_whole_planning_scene_replaces_the_world(server, client, arm_data):
    q, names = arm_data
    world = PlanningScene(is_diff=False)
    world.world.collision_objects = [table_object()]
    version = client.call(GetScene, S + "scene").version
    pub = publish(client, PlanningScene, "/world_test/planning_scene", world)
    report = scene_after(client, version)
    assert list(report.object_ids) == ["table"], report.object_ids
    res = client.call(GraphGeodesic, S + "graph_geodesic", timeout=120,
                      start=Endpoint(joint_names=names, positions=q[START].tolist()),
                      goal=Endpoint(joint_names=names, positions=q[GOAL].tolist()))
    assert res.success and res.stats.clearance_object == "table", res.message
    client.node.destroy_publisher(pub)


def table_object():
    table = CollisionObject(id="table", operation=CollisionObject.ADD)
    table.header.frame_id = ROOT_FRAME
    table.pose.position.x, table.pose.position.z = -0.9, -0.3
    table.pose.orientation.w = 1.0
    table.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[0.4, 0.4, 0.02])]
    table.primitive_poses = [Pose()]
    table.primitive_poses[0].orientation.w = 1.0
    return table


class FakeMoveGroup(Node):
    """move_group's get_planning_scene, as MoveIt answers it: the whole world (is_diff
    false), here a table in the robot's root frame and a tray in MoveIt's "world"
    frame; it records the components each request asked for."""

    def __init__(self, name):
        super().__init__("fake_move_group")
        self.asked = []
        self.create_service(GetPlanningScene, name, self.answer)

    def answer(self, req, res):
        self.asked.append(req.components.components)
        res.scene.is_diff = False
        tray = table_object()
        tray.id, tray.header.frame_id = "tray", "world"   # MoveIt's planning frame
        tray.pose.position.z = 0.2
        res.scene.world.collision_objects = [table_object(), tray]
        return res


def test_move_groups_world_is_read_at_start_before_any_request(fixture_dir, start_node,
                                                               client):
    move_group = FakeMoveGroup("/move_group_test/get_planning_scene")
    spinner = SingleThreadedExecutor()
    spinner.add_node(move_group)
    threading.Thread(target=spinner.spin, daemon=True).start()
    urdf_pub = client.node.create_publisher(String, "/move_group_test/robot_description",
                                            LATCHED)
    urdf_pub.publish(String(data=URDF))
    # The robot stands 0.5 m up in MoveIt's "world" frame (an SRDF virtual joint).
    static = client.node.create_publisher(TFMessage, "/tf_static", LATCHED_TF)
    static.publish(TFMessage(transforms=[transform("world", ROOT_FRAME, (0.0, 0.0, 0.5),
                                                   (0.0, 0.0, 0.0, 1.0))]))
    node = start_node("server", "--ros-args", "-r", "__node:=mg_server",
                      "-r", "robot_description:=/move_group_test/robot_description",
                      "-r", "get_planning_scene:=/move_group_test/get_planning_scene",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=20.0",
                      "-p", "move_group_wait:=60.0", name="mg_server")
    try:
        # The very first answer already holds move_group's world: no waiting for it.
        report = client.call(GetScene, "/mg_server/scene")
        assert sorted(report.object_ids) == ["table", "tray"], node.output()[-3000:]
        tray = [o for o in yaml.safe_load(report.objects_yaml)["objects"]
                if o["id"] == "tray"][0]   # placed through /tf_static at start
        assert np.allclose(tray["pose"]["position"], (-0.9, 0.0, -0.3), atol=1e-9), tray
        assert move_group.asked and set(move_group.asked) == {
            PlanningSceneComponents.WORLD_OBJECT_GEOMETRY}
    finally:
        assert node.stop() == 0, node.output()[-3000:]
        spinner.shutdown()
        move_group.destroy_node()
        client.node.destroy_publisher(urdf_pub)
        client.node.destroy_publisher(static)
