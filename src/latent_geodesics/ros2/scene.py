"""The robot's world on ROS 2, as MoveIt 2 users keep it: the geodesic server reads
moveit_msgs/CollisionObject on collision_object and moveit_msgs/PlanningScene on
planning_scene (both remappable; MoveIt's names are /collision_object and
/planning_scene), asks move_group's get_planning_scene once at start where one answers
within move_group_wait (MoveIt's own scene monitors do this), loads a static scene from
the `scene` parameter's YAML file at start, answers ~/scene (what it holds) and draws
the objects on ~/scene_markers (transient local, as ROS 1 latches). The same rules as
ros/scene.py, through the same core (serving/service.py applies the changes,
world/moveit.py reads the messages). Frames other than the robot's root are looked up
in what /tf and /tf_static carry (tf2_ros's topics and QoS; world/frames.py chains them,
as no tf2_ros wheel exists for the pip-installed ROS 2), waiting up to 0.2 s for one
that has not arrived, as ROS 1's scene does; an object whose frame stays unknown is
refused with a warning naming the object and the frame.
"""
import dataclasses
import threading
import time

import numpy as np
import rclpy
from moveit_msgs.msg import CollisionObject, PlanningScene, PlanningSceneComponents
from moveit_msgs.srv import GetPlanningScene
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from latent_geodesics.ros2.parameters import declare_settings
from latent_geodesics.settings import setting
from latent_geodesics.srv import GetScene
from latent_geodesics.world.display import marker_specs
from latent_geodesics.world.frames import FrameTree
from latent_geodesics.world.scene import pose_matrix

# MoveIt publishes scene updates in bursts (a whole shelf of objects at once): keep
# them all, reliably, in order.
SCENE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
MARKERS_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
MOVE_GROUP_ANSWER = 5.0   # s for move_group to answer, once found (twice: see read_move_group)
# tf2_ros's listener QoS (tf2_ros/qos.py): /tf reliable and deep, /tf_static latched.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
TF_WAIT = 0.2   # s an object's frame may take to arrive (ros/scene.py's TF_TIMEOUT)


class TfFrames:
    """/tf and /tf_static into a FrameTree, read on a callback group of their own so
    that a scene update waiting for its frame does not hold them up. A transform is
    kept as it came and turned into a matrix when a lookup needs it: /tf carries tens
    of frames many times a second, objects arrive seldom."""

    def __init__(self, node):
        self.node = node
        self.tree, self.changed, self.arrived = FrameTree(), threading.Condition(), {}
        self.executor_runs = False   # before: read_move_group spins the node itself
        group = MutuallyExclusiveCallbackGroup()
        for topic, qos in (("/tf", TF_QOS), ("/tf_static", TF_STATIC_QOS)):
            node.create_subscription(TFMessage, topic, self.on_tf, qos, callback_group=group)

    def on_tf(self, msg):
        with self.changed:
            for t in msg.transforms:
                x, r = t.transform.translation, t.transform.rotation
                self.arrived[t.child_frame_id] = (t.header.frame_id, (x.x, x.y, x.z),
                                                  (r.x, r.y, r.z, r.w))
            self.changed.notify_all()

    def _lookup(self, target, source):
        for child, (parent, position, orientation) in self.arrived.items():
            try:
                self.tree.set(parent, child, pose_matrix(position, orientation))
            except ValueError:   # a zero or non-finite quaternion: tf2 drops it too
                continue
        self.arrived = {}
        return self.tree.lookup(target, source)

    def lookup(self, target, source, wait=TF_WAIT):
        """The pose of frame source in frame target (4x4), or None after `wait` s. Before
        the executor runs (move_group's scene at start), the wait spins the node."""
        deadline = time.monotonic() + wait
        while True:
            with self.changed:
                pose, left = self._lookup(target, source), deadline - time.monotonic()
                if pose is not None or left <= 0:
                    return pose
                if self.executor_runs:
                    self.changed.wait(left)
                    continue
            rclpy.spin_once(self.node, timeout_sec=min(left, 0.02))


@dataclasses.dataclass(frozen=True)
class SceneSettings:
    scene: str = setting("", "a YAML file of objects loaded at start (the format ~/scene's "
                         "objects_yaml reports; see the README); empty: none")
    move_group_wait: float = setting(
        1.0, "s to wait at start for move_group's get_planning_scene (DDS discovery); "
        "0: do not ask", low=0.0, high=600.0)


class SceneTopics:
    """The scene's topics, service and markers for one node over its GeodesicService."""

    def __init__(self, node, service, service_qos, callback_group):
        """Before the node's other services exist: reading move_group's scene spins the
        node, which must not serve a request before the world is known."""
        self.node, self.service = node, service
        self.frames = TfFrames(node)
        self.markers = node.create_publisher(MarkerArray, "~/scene_markers", MARKERS_QOS)
        settings = declare_settings(node, SceneSettings())
        self.read_move_group(settings.move_group_wait)
        self.frames.executor_runs = True   # the node's next spin is the executor's
        if settings.scene:
            self.report(service.load_scene(settings.scene), "scene file %s" % settings.scene)
        node.create_service(GetScene, "~/scene", self.handle_scene, qos_profile=service_qos,
                            callback_group=callback_group)
        self.publish_markers()
        # One update at a time, in arrival order: each applies to the scene before it.
        updates = MutuallyExclusiveCallbackGroup()
        node.create_subscription(CollisionObject, "collision_object", self.on_collision_object,
                                 SCENE_QOS, callback_group=updates)
        node.create_subscription(PlanningScene, "planning_scene", self.on_planning_scene,
                                 SCENE_QOS, callback_group=updates)

    def transform(self, frame_id):
        """The frame's pose in the robot's root frame (4x4), or None when unknown."""
        root = self.service.current_scene().frame
        if frame_id in ("", root):
            return np.eye(4)
        return self.frames.lookup(root, frame_id)

    def on_collision_object(self, msg):
        self.report(self.service.collision_object(msg, self.transform), "collision object")

    def on_planning_scene(self, msg, what="planning scene"):
        self.report(self.service.planning_scene(msg, self.transform), what)

    def read_move_group(self, wait):
        """move_group's world at start, where it answers (as on ROS 1): spun here, before
        the executor takes the node. A request sent just after discovery can be lost to
        DDS matching the reply reader late, so an unanswered one is sent once more."""
        client = self.node.create_client(GetPlanningScene, "get_planning_scene")
        try:
            if wait <= 0 or not client.wait_for_service(timeout_sec=wait):
                return   # no move_group: the topics and the scene file bring the world
            request = GetPlanningScene.Request(components=PlanningSceneComponents(
                components=PlanningSceneComponents.WORLD_OBJECT_GEOMETRY))
            for _ in range(2):
                future = client.call_async(request)
                rclpy.spin_until_future_complete(self.node, future,
                                                 timeout_sec=MOVE_GROUP_ANSWER)
                if future.done():
                    self.on_planning_scene(future.result().scene,
                                           "move_group's planning scene")
                    return
                client.remove_pending_request(future)
            self.node.get_logger().warning(
                "move_group's get_planning_scene did not answer within 2 x %.0f s: the "
                "scene holds only what the topics and the scene file bring" % MOVE_GROUP_ANSWER)
        finally:
            self.node.destroy_client(client)

    def report(self, reply, what):
        log = self.node.get_logger()
        if reply.success:
            log.info(reply.message)
            self.publish_markers()
            return
        log.warning("%s refused: %s" % (what, reply.message))

    def handle_scene(self, req, res):
        reply = self.service.scene_report(req)
        res.success, res.message = reply.success, reply.message
        for name, value in reply.fields.items():
            setattr(res, name, value)
        return res

    def publish_markers(self):
        scene = self.service.current_scene()
        stamp = self.node.get_clock().now().to_msg()
        array = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])
        for spec in marker_specs(scene):
            marker = Marker(ns=spec["ns"], id=spec["id"], type=spec["type"], action=Marker.ADD)
            marker.header.frame_id, marker.header.stamp = scene.frame, stamp
            p, o = marker.pose.position, marker.pose.orientation
            p.x, p.y, p.z = (float(v) for v in spec["position"])
            o.x, o.y, o.z, o.w = (float(v) for v in spec["orientation"])
            marker.scale.x, marker.scale.y, marker.scale.z = (float(v) for v in spec["scale"])
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = spec["colour"]
            for x, y, z in spec["points"]:
                marker.points.append(type(p)(x=float(x), y=float(y), z=float(z)))
            array.markers.append(marker)
        self.markers.publish(array)
