"""geodesic_server: hosts a trained IWAE and answers latent-geometry queries: a
message adapter over GeodesicService (serving/service.py; messages.py converts).

Services (private): ~encode, ~decode, ~graph_geodesic, ~geodesic_lengths (many
starts to many goals in one pass), ~magnification_factor, ~reload, ~scene (the
objects it plans around: MoveIt's collision_object and planning_scene topics,
move_group's scene, the ~scene file; ros/scene.py). Actions:
~nn_geodesic, ~execute (through the robot's FollowJointTrajectory controller,
ros/execution.py). Topics: ~trajectory, ~latent_path, ~mf_map (latched, 2-D
latent spaces); health on /diagnostics (ros/diagnostics.py). Subscribes to
joint_states (remappable) for requests with an empty start. Joint limits: the URDF
on robot_description, then MoveIt's robot_description_planning/joint_limits, then
~joint_limits. Parameters: config/geodesic_server.yaml.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import rospy
from nav_msgs.msg import Path
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from latent_geodesics.msg import (
    NNGeodesicAction,
    NNGeodesicFeedback,
    NNGeodesicResult,
)
from latent_geodesics.ros import run_node
from latent_geodesics.ros.action_server import SimpleActionServer
from latent_geodesics.ros.diagnostics import ServerDiagnostics
from latent_geodesics.ros.execution import Executor
from latent_geodesics.ros.messages import mf_image, path_msg, response, trajectory_msg
from latent_geodesics.ros.scene import SceneAdapter
from latent_geodesics.serving.engine import Engine, Settings
from latent_geodesics.serving.robot_state import JointStateBuffer, StateError
from latent_geodesics.serving.service import (
    GeodesicService,
    NodeSettings,
    serving_threads,
)
from latent_geodesics.settings import read
from latent_geodesics.srv import (
    Decode,
    DecodeResponse,
    Encode,
    EncodeResponse,
    GeodesicLengths,
    GeodesicLengthsResponse,
    GraphGeodesic,
    GraphGeodesicResponse,
    MagnificationFactor,
    MagnificationFactorResponse,
    Reload,
    ReloadResponse,
)


def private(name, default):
    return rospy.get_param("~" + name, default)


def planning_limits():
    """MoveIt's joint_limits.yaml as loaded for move_group (robot_description_planning)."""
    return rospy.get_param("robot_description_planning/joint_limits", {}) or {}


class GeodesicServer:
    """Message adapter over GeodesicService (service.py): each handler converts the
    request, calls the service and converts its Reply; nothing else."""

    def __init__(self):
        params = read(NodeSettings, private)
        if not params.model_dir:
            raise ValueError("parameter ~model_dir is required: the trained model's directory")
        self.frame_id = params.frame_id
        engine = Engine(params.model_dir, read(Settings, private),
                        log=rospy.loginfo, warn=rospy.logwarn,
                        robot_description=rospy.get_param("robot_description", None),
                        planning_limits=planning_limits())
        serving_threads(engine.settings)
        self.joint_state = JointStateBuffer(params.joint_states_max_age,
                                            keep=engine.served.joint_names)
        self.service = GeodesicService(engine, self.joint_state, rospy.get_time, rospy.logerr,
                                       params.feedback_every)
        self.engine = engine
        self.joint_state_sub = rospy.Subscriber("joint_states", JointState,
                                                self.on_joint_state, queue_size=10)
        self.trajectory_pub = rospy.Publisher("~trajectory", JointTrajectory, queue_size=10)
        self.path_pub = rospy.Publisher("~latent_path", Path, queue_size=10)
        self.mf_pub = rospy.Publisher("~mf_map", Image, queue_size=1, latch=True)
        self.publish_lock = threading.Lock()
        # The MF map is drawn by one long-lived thread: matplotlib drawing from each
        # request's fresh thread grew the node by ~10 MB a reload (allocator arenas).
        # Made before the services: a ~reload may come as soon as they are advertised.
        self.mf_drawer = ThreadPoolExecutor(max_workers=1)
        service = self.service
        self.services = [
            self.adapt("~encode", Encode, EncodeResponse, service.encode),
            self.adapt("~decode", Decode, DecodeResponse, service.decode),
            self.adapt("~graph_geodesic", GraphGeodesic, GraphGeodesicResponse,
                       service.graph_geodesic),
            self.adapt("~geodesic_lengths", GeodesicLengths, GeodesicLengthsResponse,
                       service.geodesic_lengths),
            self.adapt("~magnification_factor", MagnificationFactor,
                       MagnificationFactorResponse, service.magnification_factor),
            rospy.Service("~reload", Reload, self.handle_reload),
        ]
        self.nn_server = SimpleActionServer("~nn_geodesic", NNGeodesicAction,
                                            self.execute_nn, auto_start=False)
        self.nn_server.start()
        self.scene = SceneAdapter(self.service)
        self.executor = Executor(self)
        self.diagnostics = ServerDiagnostics(self)
        self.mf_drawer.submit(self.publish_mf_map)   # after the services: seconds

    def on_joint_state(self, msg):
        now = rospy.get_time()
        try:
            self.joint_state.update(msg.name, msg.position, msg.header.stamp.to_sec() or now,
                                    received=now)
        except StateError as e:
            rospy.logwarn_throttle(5.0, str(e))

    def adapt(self, name, kind, response_type, call):
        def handle(req):
            reply = call(req)
            if reply.success and getattr(req, "publish", False):
                self.publish(reply.result)
            return self.response(response_type(), reply, getattr(req, "stamp_now", False))
        return rospy.Service(name, kind, handle)

    def handle_reload(self, req):
        # The URDF and MoveIt's limits are read again: limits set after the start apply.
        reply = self.service.reload(req, rospy.get_param("robot_description", None),
                                    planning_limits())
        if reply.success:
            self.mf_drawer.submit(self.publish_mf_map).result()
        return self.response(ReloadResponse(), reply)

    def execute_nn(self, goal):
        server = self.nn_server
        reply = self.service.refine(
            goal, lambda i, length: server.publish_feedback(
                NNGeodesicFeedback(iteration=i, length=length)),
            server.is_preempt_requested)
        result = self.response(NNGeodesicResult(), reply, goal.stamp_now)
        if reply.cancelled:
            server.set_preempted(result, reply.message)
        elif not reply.success:
            server.set_aborted(result, reply.message)
        else:
            if goal.publish:
                self.publish(reply.result)
            server.set_succeeded(result, reply.message)

    # --- messages -------------------------------------------------------------
    def response(self, msg, reply, stamp_now=False):
        return response(msg, reply, stamp_now)

    @staticmethod
    def trajectory_msg(result, stamp_now=False):
        return trajectory_msg(result, stamp_now)

    def publish(self, result):
        with self.publish_lock:
            self.trajectory_pub.publish(trajectory_msg(result))
            self.path_pub.publish(path_msg(result.latent, self.frame_id))

    def publish_mf_map(self):
        self.mf_pub.publish(mf_image(self.engine.served, self.frame_id))


def main():
    run_node("geodesic_server", GeodesicServer)
