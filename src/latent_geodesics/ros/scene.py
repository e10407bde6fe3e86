"""The robot's world on ROS 1, as MoveIt users keep it: the geodesic server reads
moveit_msgs/CollisionObject on collision_object and moveit_msgs/PlanningScene on
planning_scene (both remappable; MoveIt's names are /collision_object and
/planning_scene), asks move_group's get_planning_scene once at start where one runs,
loads a static scene from the ~scene YAML file, answers ~scene (what it holds) and
draws the objects on ~scene_markers (latched). Frames other than the robot's root
are looked up on tf; an object whose frame or shape cannot be read is refused with
a warning naming it (serving/service.py applies the changes; world/moveit.py reads
the messages).
"""
import numpy as np
import rospy
import tf2_ros
from moveit_msgs.msg import CollisionObject, PlanningScene, PlanningSceneComponents
from moveit_msgs.srv import GetPlanningScene
from visualization_msgs.msg import Marker, MarkerArray

from latent_geodesics.srv import GetScene, GetSceneResponse
from latent_geodesics.world.display import marker_specs
from latent_geodesics.world.scene import pose_matrix

TF_TIMEOUT = 0.2        # s to wait for a frame's transform
MOVE_GROUP_WAIT = 0.5   # s to wait for move_group's get_planning_scene at start


class SceneAdapter:
    def __init__(self, service):
        self.service = service
        self.tf = tf2_ros.Buffer()
        self.tf_listener = tf2_ros.TransformListener(self.tf)
        self.markers = rospy.Publisher("~scene_markers", MarkerArray, queue_size=1, latch=True)
        self.scene_service = rospy.Service("~scene", GetScene, self.handle_scene)
        self.read_move_group()
        scene_file = rospy.get_param("~scene", "")
        if scene_file:
            self.report(service.load_scene(scene_file), "~scene %s" % scene_file)
        self.publish_markers()
        self.subscribers = [
            rospy.Subscriber("collision_object", CollisionObject, self.on_collision_object,
                             queue_size=100),
            rospy.Subscriber("planning_scene", PlanningScene, self.on_planning_scene,
                             queue_size=100),
        ]

    def transform(self, frame_id):
        """The frame's pose in the robot's root frame (4x4), or None when unknown."""
        root = self.service.current_scene().frame
        if frame_id in ("", root):
            return np.eye(4)
        try:
            t = self.tf.lookup_transform(root, frame_id, rospy.Time(0),
                                         rospy.Duration(TF_TIMEOUT)).transform
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException,
                tf2_ros.ExtrapolationException, tf2_ros.TimeoutException):
            return None
        q, x = t.rotation, t.translation
        return pose_matrix([x.x, x.y, x.z], [q.x, q.y, q.z, q.w])

    def on_collision_object(self, msg):
        self.report(self.service.collision_object(msg, self.transform), "collision object")

    def on_planning_scene(self, msg):
        self.report(self.service.planning_scene(msg, self.transform), "planning scene")

    def read_move_group(self):
        """move_group's world at start, where it runs (MoveIt's own monitors do this)."""
        try:
            rospy.wait_for_service("get_planning_scene", MOVE_GROUP_WAIT)
            answer = rospy.ServiceProxy("get_planning_scene", GetPlanningScene)(
                PlanningSceneComponents(components=PlanningSceneComponents.WORLD_OBJECT_GEOMETRY))
        except (rospy.ROSException, rospy.ServiceException):
            return   # no move_group: the topics and ~scene bring the world
        self.report(self.service.planning_scene(answer.scene, self.transform),
                    "move_group's planning scene")

    def report(self, reply, what):
        if reply.success:
            rospy.loginfo("%s", reply.message)
            self.publish_markers()
        else:
            rospy.logwarn("%s refused: %s", what, reply.message)

    def handle_scene(self, req):
        reply = self.service.scene_report(req)
        response = GetSceneResponse(success=reply.success, message=reply.message)
        for name, value in reply.fields.items():
            setattr(response, name, value)
        return response

    def publish_markers(self):
        scene = self.service.current_scene()
        array = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])
        for spec in marker_specs(scene):
            marker = Marker(ns=spec["ns"], id=spec["id"], type=spec["type"], action=Marker.ADD)
            marker.header.frame_id, marker.header.stamp = scene.frame, rospy.Time.now()
            p, o = marker.pose.position, marker.pose.orientation
            p.x, p.y, p.z = spec["position"]
            o.x, o.y, o.z, o.w = spec["orientation"]
            marker.scale.x, marker.scale.y, marker.scale.z = spec["scale"]
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = spec["colour"]
            for x, y, z in spec["points"]:
                marker.points.append(type(p)(x=x, y=y, z=z))
            array.markers.append(marker)
        self.markers.publish(array)
