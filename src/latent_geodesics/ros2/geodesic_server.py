"""geodesic_server for ROS 2: the ROS 1 node's services, action and topics, a message
adapter over the same GeodesicService (serving/service.py; messages.py converts).

Services ~/encode, ~/decode, ~/graph_geodesic, ~/geodesic_lengths,
~/magnification_factor, ~/reload, ~/scene (the objects it plans around: MoveIt's
collision_object and planning_scene topics and the `scene` file; scene.py); actions
~/nn_geodesic (feedback, cancel) and ~/execute (through the robot's
FollowJointTrajectory controller; execution.py); topics ~/trajectory, ~/latent_path,
~/mf_map, ~/scene_markers (transient local, as ROS 1 latches) and /diagnostics.
joint_states at sensor QoS for an empty start; robot_description from the topic
robot_state_publisher latches (transient local), its joint limits under MoveIt's
nested robot_description_planning.joint_limits and joint_limits parameters.
Services and the actions run in their own callback groups on a multi-threaded
executor, so a long refinement never blocks a service.
"""
import dataclasses
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from latent_geodesics.action import NNGeodesic
from latent_geodesics.ros2.execution import Executor
from latent_geodesics.ros2.messages import (
    diagnostics_msg,
    mf_image,
    path_msg,
    response,
    trajectory_msg,
)
from latent_geodesics.ros2.parameters import declare_settings, nested, on_change, service_qos
from latent_geodesics.ros2.scene import SceneTopics
from latent_geodesics.serving.engine import REQUEST_TIME_SETTINGS, Engine, Settings
from latent_geodesics.serving.robot_state import JointStateBuffer, StateError
from latent_geodesics.serving.service import (
    GeodesicService,
    NodeSettings,
    serving_threads,
)
from latent_geodesics.settings import runtime_names, validate
from latent_geodesics.srv import (
    Decode,
    Encode,
    GeodesicLengths,
    GraphGeodesic,
    MagnificationFactor,
    Reload,
)

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class GeodesicServer(Node):
    def __init__(self):
        super().__init__("geodesic_server",
                         automatically_declare_parameters_from_overrides=True)
        settings = declare_settings(self, Settings())
        settings = dataclasses.replace(settings, joint_limits=nested(self, "joint_limits"))
        self.params = declare_settings(self, NodeSettings())
        self.service_qos = service_qos(self)
        if not self.params.model_dir:
            raise ValueError("parameter model_dir is required: the trained model's directory")
        self.services_group = ReentrantCallbackGroup()
        self.robot_description = self.wait_for_robot_description()
        log = self.get_logger()
        self.engine = Engine(self.params.model_dir, settings, log=log.info, warn=log.warning,
                             robot_description=self.robot_description,
                             planning_limits=self.planning_limits())
        serving_threads(self.engine.settings)
        self.joint_state = JointStateBuffer(self.params.joint_states_max_age,
                                            keep=self.engine.served.joint_names)
        self.service = GeodesicService(self.engine, self.joint_state, self.now,
                                       log.error, self.params.feedback_every)
        writable = set(REQUEST_TIME_SETTINGS) | set(runtime_names(NodeSettings))
        self.add_on_set_parameters_callback(on_change(writable, self.apply_changes))
        self.create_subscription(JointState, "joint_states", self.on_joint_state,
                                 qos_profile_sensor_data)
        self.trajectory_pub = self.create_publisher(JointTrajectory, "~/trajectory", 10)
        self.path_pub = self.create_publisher(Path, "~/latent_path", 10)
        self.mf_pub = self.create_publisher(Image, "~/mf_map", LATCHED)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # The scene first: it may spin the node to read move_group's world, and no
        # request may be served before that world is known.
        self.scene = SceneTopics(self, self.service, self.service_qos, self.services_group)
        self.create_services()
        self.refinement = Refinement(self)
        self.execution = Executor(self, self.service_qos)   # not .executor: rclpy's own
        background = MutuallyExclusiveCallbackGroup()
        self.create_timer(1.0, self.publish_diagnostics, callback_group=background)
        self.mf_timer = self.create_timer(0.0, self.publish_mf_map_once,
                                          callback_group=background)

    # --- set-up -----------------------------------------------------------------
    def wait_for_robot_description(self):
        """The latched URDF robot_state_publisher offers, if one arrives within
        robot_description_wait; see on_robot_description for later ones."""
        self.latest_description = None   # only the latest: a URDF can be megabytes
        self.create_subscription(String, "robot_description", self.on_robot_description,
                                 LATCHED, callback_group=MutuallyExclusiveCallbackGroup())
        deadline = time.monotonic() + self.params.robot_description_wait
        while self.latest_description is None and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)   # alone, before the executor takes it
        return self.latest_description

    def on_robot_description(self, msg):
        """Before the engine exists: the start's URDF. The first one after the start
        (robot_state_publisher started later) is applied at once by a reload; a
        changed one counts from the next ~/reload, as on ROS 1. One that cannot be
        applied is refused with a log line; the server serves on as it was."""
        self.latest_description = msg.data
        if getattr(self, "service", None) is None:
            return
        if self.robot_description is not None:
            self.robot_description = msg.data
            self.get_logger().info("robot_description changed: its joint limits apply from "
                                   "the next ~/reload")
            return
        reply = self.service.apply_robot_description(msg.data)
        if reply.success:
            self.robot_description = msg.data
            self.get_logger().info(reply.message)
        else:
            self.get_logger().error(reply.message)

    def planning_limits(self):
        """MoveIt's joint_limits.yaml entries, as MoveIt 2 nodes take them."""
        return nested(self, "robot_description_planning.joint_limits")

    def apply_changes(self, changes):
        node = {k: v for k, v in changes.items() if k in dataclasses.asdict(self.params)}
        engine = {k: v for k, v in changes.items() if k in REQUEST_TIME_SETTINGS}
        settings = dataclasses.replace(self.engine.settings, **engine).validate()
        params = validate(dataclasses.replace(self.params, **node))
        self.service.feedback_every = params.feedback_every
        self.engine.settings, self.params = settings, params

    def create_services(self):
        service = self.service
        for kind, name, call in ((Encode, "encode", service.encode),
                                 (Decode, "decode", service.decode),
                                 (GraphGeodesic, "graph_geodesic", service.graph_geodesic),
                                 (GeodesicLengths, "geodesic_lengths", service.geodesic_lengths),
                                 (MagnificationFactor, "magnification_factor",
                                  service.magnification_factor),
                                 (Reload, "reload", self.reload)):
            self.create_service(kind, "~/" + name, self.adapt(call),
                                qos_profile=self.service_qos,
                                callback_group=self.services_group)

    def adapt(self, call):
        def handle(req, res):
            reply = call(req)
            if reply.success and getattr(req, "publish", False):
                self.publish(reply.result)
            return self.response(res, reply, getattr(req, "stamp_now", False))
        return handle

    def reload(self, req):
        reply = self.service.reload(req, self.robot_description, self.planning_limits())
        if reply.success:
            self.publish_mf_map()
        return reply

    def now(self):
        return self.get_clock().now().nanoseconds / 1e9

    def on_joint_state(self, msg):
        now = self.now()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec / 1e9
        try:
            self.joint_state.update(msg.name, msg.position, stamp or now, received=now)
        except StateError as e:
            self.get_logger().warning(str(e), throttle_duration_sec=5.0)

    # --- messages ---------------------------------------------------------------
    def stamp(self):
        return self.get_clock().now().to_msg()

    def response(self, msg, reply, stamp_now=False):
        return response(msg, reply, self.stamp() if stamp_now else None)

    def publish(self, result):
        self.trajectory_pub.publish(trajectory_msg(result))
        self.path_pub.publish(path_msg(result.latent, self.params.frame_id, self.stamp()))

    def publish_mf_map_once(self):
        self.mf_timer.cancel()   # after the services are up: drawing takes seconds
        self.publish_mf_map()

    def publish_mf_map(self):
        self.mf_pub.publish(mf_image(self.engine.served, self.params.frame_id, self.stamp()))

    def publish_diagnostics(self):
        report = self.service.health_report()
        self.diagnostics_pub.publish(diagnostics_msg(self.get_name(), report, self.stamp()))


class Refinement:
    """The ~/nn_geodesic action: feedback every feedback_every iterations, cancel
    honoured between iterations (the best curve so far comes back)."""

    def __init__(self, server):
        self.server = server
        qos = server.service_qos   # the action's goal, cancel and result services
        self.action = ActionServer(server, NNGeodesic, "~/nn_geodesic",
                                   execute_callback=self.execute,
                                   goal_callback=lambda goal: GoalResponse.ACCEPT,
                                   cancel_callback=lambda handle: CancelResponse.ACCEPT,
                                   goal_service_qos_profile=qos,
                                   cancel_service_qos_profile=qos,
                                   result_service_qos_profile=qos,
                                   callback_group=ReentrantCallbackGroup())

    def execute(self, goal_handle):
        server, goal = self.server, goal_handle.request
        reply = server.service.refine(
            goal, lambda i, length: goal_handle.publish_feedback(
                NNGeodesic.Feedback(iteration=i, length=length)),
            lambda: goal_handle.is_cancel_requested)
        if reply.cancelled:
            goal_handle.canceled()
        elif not reply.success:
            goal_handle.abort()
        else:
            if goal.publish:
                server.publish(reply.result)
            goal_handle.succeed()
        return server.response(NNGeodesic.Result(), reply, goal.stamp_now)
