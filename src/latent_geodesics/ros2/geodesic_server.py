"""geodesic_server for ROS 2: the ROS 1 node's services, action and topics over the
same Engine (ros/geodesic_server.py has the full description).

Services ~/encode, ~/decode, ~/graph_geodesic, ~/geodesic_lengths,
~/magnification_factor, ~/reload; action ~/nn_geodesic (feedback, cancel); topics
~/trajectory, ~/latent_path, ~/mf_map (transient local, as ROS 1 latches) and
/diagnostics. joint_states at sensor QoS for an empty start; robot_description
from the topic robot_state_publisher latches (transient local), its joint limits
under MoveIt's nested robot_description_planning.joint_limits and joint_limits
parameters. Services and the action run in their own callback groups on a
multi-threaded executor, so a long refinement never blocks a service.
"""
import dataclasses
import time
import traceback

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.action import NNGeodesic
from latent_geodesics.engine import REQUEST_TIME_SETTINGS, Engine, RequestError, Settings
from latent_geodesics.frontend import (
    RequestHealth,
    endpoint,
    health_report,
    is_empty,
    path_xyz,
    result_fields,
    scaling,
    serving_threads,
    trajectory_points,
)
from latent_geodesics.model import ModelError
from latent_geodesics.msg import Endpoint, GeodesicStats
from latent_geodesics.plots import figure_rgb, latent_figure
from latent_geodesics.robot_state import JointStateBuffer, StateError
from latent_geodesics.ros2.parameters import declare_dataclass, nested, on_change, service_qos
from latent_geodesics.srv import (
    Decode,
    Encode,
    GeodesicLengths,
    GraphGeodesic,
    MagnificationFactor,
    Reload,
)

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclasses.dataclass
class NodeParams:
    """The node's own parameters (the engine's are Settings)."""
    model_dir: str = ""
    frame_id: str = "latent"
    feedback_every: int = 10
    joint_states_max_age: float = 1.0
    robot_description_wait: float = 2.0   # s to wait at start for a latched robot_description


def guarded(handler):
    """RequestError (and any surprise) as success=False; the node keeps serving.
    Every call's latency and outcome go to the node's health (diagnostics)."""
    def call(self, request, response):
        started = time.perf_counter()
        try:
            response = handler(self, request, response)
        except RequestError as e:
            response.success, response.message = False, str(e)
        except Exception as e:  # never let one request take the node down
            self.get_logger().error("%s failed: %r\n%s" % (handler.__name__, e,
                                                            traceback.format_exc()))
            response.success, response.message = False, "internal error: %s" % e
        self.health.record(time.perf_counter() - started, response.success)
        return response
    return call


class GeodesicServer(Node):
    def __init__(self):
        super().__init__("geodesic_server",
                         automatically_declare_parameters_from_overrides=True)
        settings = declare_dataclass(self, Settings(), REQUEST_TIME_SETTINGS)
        settings = dataclasses.replace(settings, joint_limits=nested(self, "joint_limits"))
        self.params = declare_dataclass(self, NodeParams(), ("feedback_every",))
        self.service_qos = service_qos(self)
        if not self.params.model_dir:
            raise ValueError("parameter model_dir is required: the trained model's directory")
        self.health = RequestHealth()
        self.services_group = ReentrantCallbackGroup()
        self.robot_description = self.wait_for_robot_description()
        log = self.get_logger()
        self.engine = Engine(self.params.model_dir, settings, log=log.info, warn=log.warning,
                             robot_description=self.robot_description,
                             planning_limits=self.planning_limits())
        serving_threads(self.engine.settings)
        writable = set(REQUEST_TIME_SETTINGS) | {"feedback_every"}
        self.add_on_set_parameters_callback(on_change(writable, self.apply_changes))
        self.joint_state = JointStateBuffer(self.params.joint_states_max_age,
                                            keep=self.engine.served.joint_names)
        self.create_subscription(JointState, "joint_states", self.on_joint_state,
                                 qos_profile_sensor_data)
        self.trajectory_pub = self.create_publisher(JointTrajectory, "~/trajectory", 10)
        self.path_pub = self.create_publisher(Path, "~/latent_path", 10)
        self.mf_pub = self.create_publisher(Image, "~/mf_map", LATCHED)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_services()
        self.refinement = Refinement(self)
        background = MutuallyExclusiveCallbackGroup()
        self.create_timer(1.0, self.publish_diagnostics, callback_group=background)
        self.mf_timer = self.create_timer(0.0, self.publish_mf_map_once,
                                          callback_group=background)

    # --- set-up -----------------------------------------------------------------
    def wait_for_robot_description(self):
        """The latched URDF robot_state_publisher offers, if one arrives within
        robot_description_wait; see on_robot_description for later ones."""
        received = []
        self._descriptions = received
        self.create_subscription(String, "robot_description", self.on_robot_description,
                                 LATCHED, callback_group=MutuallyExclusiveCallbackGroup())
        deadline = time.monotonic() + self.params.robot_description_wait
        while not received and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)   # alone, before the executor takes it
        return received[-1] if received else None

    def on_robot_description(self, msg):
        """Before the engine exists: the start's URDF. The first one after the start
        (robot_state_publisher started later) is applied at once by a reload; a
        changed one counts from the next ~/reload, as on ROS 1."""
        self._descriptions.append(msg.data)
        if getattr(self, "engine", None) is None:
            return
        first = self.robot_description is None
        self.robot_description = msg.data
        if not first:
            self.get_logger().info("robot_description changed: its joint limits apply from "
                                   "the next ~/reload")
            return
        self.engine.robot_description = msg.data
        served = self.engine.reload()
        self.get_logger().info("robot_description received: joint limits from %s"
                               % served.limits.source)

    def planning_limits(self):
        """MoveIt's joint_limits.yaml entries, as MoveIt 2 nodes take them."""
        return nested(self, "robot_description_planning.joint_limits")

    def apply_changes(self, changes):
        node = {k: v for k, v in changes.items() if k in dataclasses.asdict(self.params)}
        engine = {k: v for k, v in changes.items() if k in REQUEST_TIME_SETTINGS}
        settings = dataclasses.replace(self.engine.settings, **engine).validate()
        params = dataclasses.replace(self.params, **node)
        if params.feedback_every < 1:
            raise ValueError("feedback_every must be at least 1")
        self.engine.settings, self.params = settings, params

    def create_services(self):
        group = self.services_group
        for kind, name, handler in ((Encode, "encode", self.handle_encode),
                                    (Decode, "decode", self.handle_decode),
                                    (GraphGeodesic, "graph_geodesic", self.handle_graph_geodesic),
                                    (GeodesicLengths, "geodesic_lengths", self.handle_lengths),
                                    (MagnificationFactor, "magnification_factor",
                                     self.handle_mf),
                                    (Reload, "reload", self.handle_reload)):
            self.create_service(kind, "~/" + name, handler, qos_profile=self.service_qos,
                                callback_group=group)

    def now(self):
        return self.get_clock().now().nanoseconds / 1e9

    def on_joint_state(self, msg):
        now = self.now()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec / 1e9
        try:
            self.joint_state.update(msg.name, msg.position, stamp or now, received=now)
        except StateError as e:
            self.get_logger().warning(str(e), throttle_duration_sec=5.0)

    def start(self, msg):
        """The start endpoint; an empty one is the robot's current state."""
        if not is_empty(msg):
            return endpoint(msg)
        try:
            names, positions = self.joint_state.current(self.engine.served.joint_names,
                                                        self.now())
        except StateError as e:
            raise RequestError(str(e)) from None
        return names, positions, []

    # --- services ---------------------------------------------------------------
    @guarded
    def handle_encode(self, req, res):
        res.latent_dim, z = self.engine.encode(req.joint_names, req.positions)
        res.latent, res.success = z.ravel().tolist(), True
        res.message = "encoded %d configurations" % len(z)
        return res

    @guarded
    def handle_decode(self, req, res):
        res.joint_names, x = self.engine.decode(req.latent)
        res.positions, res.success = x.ravel().tolist(), True
        res.message = "decoded %d points" % len(x)
        return res

    @guarded
    def handle_mf(self, req, res):
        values, log_values = self.engine.magnification(req.latent)
        res.values, res.log_values = values.tolist(), log_values.tolist()
        res.success, res.message = True, "%d points" % len(values)
        return res

    @guarded
    def handle_graph_geodesic(self, req, res):
        result = self.engine.graph_geodesic(self.start(req.start), endpoint(req.goal),
                                            scaling(req))
        if req.publish:
            self.publish(result)
        fill(res, self.fields(result, req.stamp_now), success=True,
             message="graph geodesic, %d points" % len(result.latent))
        return res

    @guarded
    def handle_lengths(self, req, res):
        starts = [endpoint(m) for m in req.starts] or [self.start(Endpoint())]
        lengths = self.engine.geodesic_lengths(starts, [endpoint(m) for m in req.goals])
        res.rows, res.cols = lengths.shape
        res.lengths, res.success = lengths.ravel().tolist(), True
        res.message = "%d x %d geodesic lengths" % lengths.shape
        return res

    @guarded
    def handle_reload(self, req, res):
        self.engine.robot_description = self.robot_description
        self.engine.planning_limits = self.planning_limits()
        try:
            served = self.engine.reload(req.model_dir or None)
        except ModelError as e:
            raise RequestError("reload refused, the old model keeps serving: %s" % e) from None
        self.joint_state.keep = frozenset(served.joint_names)
        self.publish_mf_map()
        res.success = True
        res.message = "serving %s (graph %s; joint limits from %s)" % (
            served.model.directory, served.info["graph_source"], served.limits.source)
        return res

    # --- messages ---------------------------------------------------------------
    def stamp(self):
        return self.get_clock().now().to_msg()

    def fields(self, result, stamp_now=False):
        trajectory = trajectory_msg(result, self.stamp() if stamp_now else None)
        return result_fields(result, trajectory, GeodesicStats)

    def publish(self, result):
        self.trajectory_pub.publish(trajectory_msg(result))
        self.path_pub.publish(path_msg(result.latent, self.params.frame_id, self.stamp()))

    def publish_mf_map_once(self):
        self.mf_timer.cancel()   # after the services are up: drawing takes seconds
        self.publish_mf_map()

    def publish_mf_map(self):
        self.mf_pub.publish(mf_image(self.engine.served, self.params.frame_id, self.stamp()))

    def publish_diagnostics(self):
        report = health_report(self.engine.served, self.health, self.joint_state, self.now())
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
        started = time.perf_counter()
        result = self.refine(goal_handle)
        self.server.health.record(time.perf_counter() - started, result.success)
        return result

    def refine(self, goal_handle):
        server, goal = self.server, goal_handle.request
        every = server.params.feedback_every

        def feedback(iteration, length):
            if iteration % every == 0:
                goal_handle.publish_feedback(NNGeodesic.Feedback(iteration=iteration,
                                                                 length=float(length)))
        try:
            result = server.engine.nn_geodesic(
                server.start(goal.start), endpoint(goal.goal), goal.mode, goal.init,
                goal.max_iterations, feedback, lambda: goal_handle.is_cancel_requested,
                scaling(goal))
        except RequestError as e:
            goal_handle.abort()
            return NNGeodesic.Result(success=False, message=str(e))
        except Exception as e:
            server.get_logger().error("nn_geodesic failed: %r\n%s"
                                      % (e, traceback.format_exc()))
            goal_handle.abort()
            return NNGeodesic.Result(success=False, message="internal error: %s" % e)
        fields = server.fields(result, goal.stamp_now)
        if result.stats.get("cancelled"):
            goal_handle.canceled()
            return fill(NNGeodesic.Result(), fields, success=False,
                        message="cancelled; best curve so far")
        if goal.publish:
            server.publish(result)
        goal_handle.succeed()
        return fill(NNGeodesic.Result(), fields, success=True, message="NN geodesic after "
                    "%d iterations" % result.stats["iterations"])


def trajectory_msg(result, stamp=None):
    """stamp 0 unless given: a controller starts a zero-stamped trajectory on
    arrival, while a past stamp makes it skip the points already "due"."""
    msg = JointTrajectory(joint_names=list(result.joint_names))
    if stamp is not None:
        msg.header.stamp = stamp
    for q, v, a, (sec, nanosec) in trajectory_points(result):
        point = JointTrajectoryPoint(positions=q, velocities=v, accelerations=a)
        point.time_from_start.sec, point.time_from_start.nanosec = sec, nanosec
        msg.points.append(point)
    return msg


def path_msg(latent, frame_id, stamp):
    path = Path()
    path.header.stamp, path.header.frame_id = stamp, frame_id
    for x, y, z in path_xyz(latent):
        pose = PoseStamped(header=path.header)
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
        pose.pose.orientation.w = 1.0
        path.poses.append(pose)
    return path


def mf_image(served, frame_id, stamp):
    """The served metric's log magnification factor over the latent data, as an image."""
    rgb = figure_rgb(latent_figure(served.graph.decoder, served.model.latents,
                                   title="log MF (served metric) and data", resolution=96))
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                step=3 * rgb.shape[1], data=np.ascontiguousarray(rgb).tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def diagnostics_msg(node_name, report, stamp):
    ok, message, values = report
    status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
                              name="%s: geodesic server" % node_name, message=message,
                              hardware_id="latent_geodesics/" + node_name,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


def fill(msg, fields, **more):
    """Set a response's or result's fields from a dictionary."""
    for name, value in dict(fields, **more).items():
        setattr(msg, name, value)
    return msg
