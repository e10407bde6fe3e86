"""The robot's world on ROS 2, as MoveIt 2 users keep it: the geodesic server reads
moveit_msgs/CollisionObject on collision_object and moveit_msgs/PlanningScene on
planning_scene (both remappable; MoveIt's names are /collision_object and
/planning_scene), loads a static scene from the `scene` parameter's YAML file at
start, answers ~/scene (what it holds) and draws the objects on ~/scene_markers
(transient local, as ROS 1 latches). The same rules as ros/scene.py, through the
same core (serving/service.py applies the changes, world/moveit.py reads the
messages), except frames: no tf2_ros wheel exists for the pip-installed ROS 2, so
objects must be given in the robot's root frame (the scene's frame); any other frame
is refused with a warning naming the object and the frame.
"""
import dataclasses

import numpy as np
from moveit_msgs.msg import CollisionObject, PlanningScene
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from visualization_msgs.msg import Marker, MarkerArray

from latent_geodesics.ros2.parameters import declare_settings
from latent_geodesics.settings import setting
from latent_geodesics.srv import GetScene
from latent_geodesics.world.display import marker_specs

# MoveIt publishes scene updates in bursts (a whole shelf of objects at once): keep
# them all, reliably, in order.
SCENE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
MARKERS_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclasses.dataclass(frozen=True)
class SceneSettings:
    scene: str = setting("", "a YAML file of objects loaded at start (the format ~/scene's "
                         "objects_yaml reports; see the README); empty: none")


class SceneTopics:
    """The scene's topics, service and markers for one node over its GeodesicService."""

    def __init__(self, node, service, service_qos, callback_group):
        self.node, self.service = node, service
        self.unknown_frames = []   # frames the latest update named that cannot be used
        self.markers = node.create_publisher(MarkerArray, "~/scene_markers", MARKERS_QOS)
        node.create_service(GetScene, "~/scene", self.handle_scene, qos_profile=service_qos,
                            callback_group=callback_group)
        scene_file = declare_settings(node, SceneSettings()).scene
        if scene_file:
            self.report(service.load_scene(scene_file), "scene file %s" % scene_file)
        self.publish_markers()
        # One update at a time, in arrival order: each applies to the scene before it.
        updates = MutuallyExclusiveCallbackGroup()
        node.create_subscription(CollisionObject, "collision_object", self.on_collision_object,
                                 SCENE_QOS, callback_group=updates)
        node.create_subscription(PlanningScene, "planning_scene", self.on_planning_scene,
                                 SCENE_QOS, callback_group=updates)

    def transform(self, frame_id):
        """The frame's pose in the robot's root frame: the identity for the root frame
        itself (or no frame), else None (unknown: world/moveit.py refuses the object)."""
        if frame_id in ("", self.service.current_scene().frame):
            return np.eye(4)
        self.unknown_frames.append(frame_id)
        return None

    def on_collision_object(self, msg):
        self.unknown_frames = []
        self.report(self.service.collision_object(msg, self.transform), "collision object")

    def on_planning_scene(self, msg):
        self.unknown_frames = []
        self.report(self.service.planning_scene(msg, self.transform), "planning scene")

    def report(self, reply, what):
        log = self.node.get_logger()
        if reply.success:
            log.info(reply.message)
            self.publish_markers()
            return
        hint = ""
        if self.unknown_frames:   # the core's remedy names tf, which this server lacks
            hint = ("; this ROS 2 server reads no tf (no tf2_ros): give objects in the robot's "
                    "root frame '%s'" % self.service.current_scene().frame)
        log.warning("%s refused: %s%s" % (what, reply.message, hint))

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
