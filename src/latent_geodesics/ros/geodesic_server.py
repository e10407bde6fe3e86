"""geodesic_server: hosts a trained IWAE and answers latent-geometry queries.

Services (private): ~encode, ~decode, ~graph_geodesic, ~geodesic_lengths (many
starts to many goals in one pass), ~magnification_factor, ~reload. Actions:
~nn_geodesic, ~execute (through the robot's FollowJointTrajectory controller,
ros/execution.py). Topics: ~trajectory, ~latent_path, ~mf_map (latched, 2-D
latent spaces); health on /diagnostics (ros/diagnostics.py). Subscribes to
joint_states (remappable) for requests with an empty start. Joint limits: the URDF
on robot_description, then MoveIt's robot_description_planning/joint_limits, then
~joint_limits. Parameters: config/geodesic_server.yaml.
"""
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rospy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.engine import Engine, RequestError, Settings
from latent_geodesics.frontend import (
    RequestHealth,
    endpoint,
    is_empty,
    path_xyz,
    result_fields,
    scaling,
    serving_threads,
    trajectory_points,
)
from latent_geodesics.model import ModelError
from latent_geodesics.msg import (
    Endpoint,
    GeodesicStats,
    NNGeodesicAction,
    NNGeodesicFeedback,
    NNGeodesicResult,
)
from latent_geodesics.plots import figure_rgb, latent_figure
from latent_geodesics.robot_state import JointStateBuffer, StateError
from latent_geodesics.ros import run_node
from latent_geodesics.ros.action_server import SimpleActionServer
from latent_geodesics.ros.diagnostics import ServerDiagnostics
from latent_geodesics.ros.execution import Executor
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


def guarded(response_type):
    """Turn RequestError (and any surprise) into success=False; keep serving. Every
    call's latency and outcome go to the node's health (diagnostics)."""
    def wrap(handler):
        def call(self, req):
            started = time.perf_counter()
            try:
                response = handler(self, req)
            except RequestError as e:
                response = response_type(success=False, message=str(e))
            except Exception as e:  # never let one request take the node down
                rospy.logerr("%s failed: %r", handler.__name__, e)
                rospy.logdebug("%s", traceback.format_exc())
                response = response_type(success=False, message="internal error: %s" % e)
            self.health.record(time.perf_counter() - started, response.success)
            return response
        return call
    return wrap


def settings_from_params():
    defaults = Settings()
    values = {name: rospy.get_param("~" + name, getattr(defaults, name))
              for name in defaults.__dataclass_fields__}
    return Settings(**values)


def planning_limits():
    """MoveIt's joint_limits.yaml as loaded for move_group (robot_description_planning)."""
    return rospy.get_param("robot_description_planning/joint_limits", {}) or {}


class GeodesicServer:
    def __init__(self):
        self.frame_id = rospy.get_param("~frame_id", "latent")
        self.feedback_every = max(1, int(rospy.get_param("~feedback_every", 10)))
        self.health = RequestHealth()
        self.engine = Engine(rospy.get_param("~model_dir"), settings_from_params(),
                             log=rospy.loginfo, warn=rospy.logwarn,
                             robot_description=rospy.get_param("robot_description", None),
                             planning_limits=planning_limits())
        serving_threads(self.engine.settings)
        self.joint_state = JointStateBuffer(rospy.get_param("~joint_states_max_age", 1.0),
                                            keep=self.engine.served.joint_names)
        self.joint_state_sub = rospy.Subscriber("joint_states", JointState,
                                                self.on_joint_state, queue_size=10)
        self.trajectory_pub = rospy.Publisher("~trajectory", JointTrajectory, queue_size=10)
        self.path_pub = rospy.Publisher("~latent_path", Path, queue_size=10)
        self.mf_pub = rospy.Publisher("~mf_map", Image, queue_size=1, latch=True)
        self.publish_lock = threading.Lock()
        self.services = [
            rospy.Service("~encode", Encode, self.handle_encode),
            rospy.Service("~decode", Decode, self.handle_decode),
            rospy.Service("~graph_geodesic", GraphGeodesic, self.handle_graph_geodesic),
            rospy.Service("~geodesic_lengths", GeodesicLengths, self.handle_geodesic_lengths),
            rospy.Service("~magnification_factor", MagnificationFactor, self.handle_mf),
            rospy.Service("~reload", Reload, self.handle_reload),
        ]
        self.nn_server = SimpleActionServer("~nn_geodesic", NNGeodesicAction,
                                            self.execute_nn, auto_start=False)
        self.nn_server.start()
        self.executor = Executor(self)
        self.diagnostics = ServerDiagnostics(self)
        # The MF map is drawn by one long-lived thread: matplotlib drawing from each
        # request's fresh thread grew the node by ~10 MB a reload (allocator arenas).
        self.mf_drawer = ThreadPoolExecutor(max_workers=1)
        self.mf_drawer.submit(self.publish_mf_map)   # after the services: seconds

    def on_joint_state(self, msg):
        now = rospy.get_time()
        try:
            self.joint_state.update(msg.name, msg.position, msg.header.stamp.to_sec() or now,
                                    received=now)
        except StateError as e:
            rospy.logwarn_throttle(5.0, str(e))

    def start(self, msg):
        """The start endpoint; an empty one is the robot's current state."""
        if not is_empty(msg):
            return endpoint(msg)
        try:
            names, positions = self.joint_state.current(self.engine.served.joint_names,
                                                        rospy.get_time())
        except StateError as e:
            raise RequestError(str(e)) from None
        return names, positions, []

    # --- services -----------------------------------------------------------
    @guarded(EncodeResponse)
    def handle_encode(self, req):
        dim, z = self.engine.encode(req.joint_names, req.positions)
        return EncodeResponse(success=True, message="encoded %d configurations" % len(z),
                              latent_dim=dim, latent=z.ravel().tolist())

    @guarded(DecodeResponse)
    def handle_decode(self, req):
        names, x = self.engine.decode(req.latent)
        return DecodeResponse(success=True, message="decoded %d points" % len(x),
                              joint_names=names, positions=x.ravel().tolist())

    @guarded(MagnificationFactorResponse)
    def handle_mf(self, req):
        values, log_values = self.engine.magnification(req.latent)
        return MagnificationFactorResponse(success=True, message="%d points" % len(values),
                                           values=values.tolist(),
                                           log_values=log_values.tolist())

    @guarded(GraphGeodesicResponse)
    def handle_graph_geodesic(self, req):
        result = self.engine.graph_geodesic(self.start(req.start), endpoint(req.goal),
                                            scaling(req))
        if req.publish:
            self.publish(result)
        return GraphGeodesicResponse(success=True, message="graph geodesic, %d points"
                                     % len(result.latent), **self.fields(result, req.stamp_now))

    @guarded(GeodesicLengthsResponse)
    def handle_geodesic_lengths(self, req):
        starts = [endpoint(m) for m in req.starts] or [self.start(Endpoint())]
        lengths = self.engine.geodesic_lengths(starts, [endpoint(m) for m in req.goals])
        return GeodesicLengthsResponse(success=True, message="%d x %d geodesic lengths"
                                       % lengths.shape, rows=lengths.shape[0],
                                       cols=lengths.shape[1], lengths=lengths.ravel().tolist())

    @guarded(ReloadResponse)
    def handle_reload(self, req):
        # The URDF and MoveIt's limits are read again: limits set after the start apply.
        self.engine.robot_description = rospy.get_param("robot_description", None)
        self.engine.planning_limits = planning_limits()
        try:
            served = self.engine.reload(req.model_dir or None)
        except ModelError as e:
            raise RequestError("reload refused, the old model keeps serving: %s" % e) from None
        self.joint_state.keep = frozenset(served.joint_names)
        self.mf_drawer.submit(self.publish_mf_map).result()
        return ReloadResponse(success=True, message="serving %s (graph %s; joint limits from "
                              "%s)" % (served.model.directory, served.info["graph_source"],
                                       served.limits.source))

    # --- the action ---------------------------------------------------------
    def execute_nn(self, goal):
        started = time.perf_counter()
        ok = self.refine(goal)
        self.health.record(time.perf_counter() - started, ok)

    def refine(self, goal):
        """The ~nn_geodesic goal answered; True if it succeeded."""
        server = self.nn_server

        def feedback(iteration, length):
            if iteration % self.feedback_every == 0:
                server.publish_feedback(NNGeodesicFeedback(iteration=iteration, length=length))

        try:
            result = self.engine.nn_geodesic(self.start(goal.start), endpoint(goal.goal),
                                             goal.mode, goal.init, goal.max_iterations,
                                             feedback, server.is_preempt_requested,
                                             scaling(goal))
        except RequestError as e:
            server.set_aborted(NNGeodesicResult(success=False, message=str(e)), str(e))
            return False
        except Exception as e:
            rospy.logerr("nn_geodesic failed: %r", e)
            rospy.logdebug("%s", traceback.format_exc())
            server.set_aborted(NNGeodesicResult(success=False, message="internal error: %s" % e))
            return False
        if result.stats.get("cancelled"):
            server.set_preempted(NNGeodesicResult(
                success=False, message="preempted; best curve so far",
                **self.fields(result, goal.stamp_now)))
            return False
        if goal.publish:
            self.publish(result)
        server.set_succeeded(NNGeodesicResult(success=True, message="NN geodesic after %d "
                                              "iterations" % result.stats["iterations"],
                                              **self.fields(result, goal.stamp_now)))
        return True

    # --- messages -------------------------------------------------------------
    @staticmethod
    def trajectory_msg(result, stamp_now=False):
        """stamp 0 unless asked: a controller starts a zero-stamped trajectory on
        arrival, while a past stamp makes it skip the points already "due"."""
        msg = JointTrajectory(joint_names=result.joint_names)
        msg.header.stamp = rospy.Time.now() if stamp_now else rospy.Time(0)
        msg.points = [JointTrajectoryPoint(positions=q, velocities=v, accelerations=a,
                                           time_from_start=rospy.Duration(*sec_ns))
                      for q, v, a, sec_ns in trajectory_points(result)]
        return msg

    def fields(self, result, stamp_now=False):
        return result_fields(result, self.trajectory_msg(result, stamp_now), GeodesicStats)

    def publish(self, result):
        path = Path()
        path.header.stamp, path.header.frame_id = rospy.Time.now(), self.frame_id
        for xyz in path_xyz(result.latent):
            pose = PoseStamped()
            pose.header = path.header
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = xyz
            pose.pose.orientation.w = 1.0
            path.poses.append(pose)
        with self.publish_lock:
            self.trajectory_pub.publish(self.trajectory_msg(result))
            self.path_pub.publish(path)

    def publish_mf_map(self):
        served = self.engine.served
        rgb = figure_rgb(latent_figure(served.graph.decoder, served.model.latents,
                                       title="log MF (served metric) and data", resolution=96))
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                    step=3 * rgb.shape[1], data=np.ascontiguousarray(rgb).tobytes())
        msg.header.stamp, msg.header.frame_id = rospy.Time.now(), self.frame_id
        self.mf_pub.publish(msg)


def main():
    run_node("geodesic_server", GeodesicServer)
