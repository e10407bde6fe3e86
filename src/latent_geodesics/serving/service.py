"""The geodesic server without ROS: one service under both front ends.

The ROS 1 and ROS 2 nodes own their node, parameters, topics and message types.
Everything a request does happens here, once: the current-state start, the
engine call, error handling (a RequestError or StateError is success=False with
its message; any other failure is an "internal error", logged, and the server
serves on), health, every message text, the response fields as plain data, the
refinement's feedback and cancel, and execution's planning and start check.
Requests are read by field name (ROS 1 and ROS 2 messages share them), so nothing
here imports ROS: the front ends turn a Reply into their response type.
"""
import collections
import dataclasses
import functools
import threading
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from latent_geodesics.model.iwae import ModelError
from latent_geodesics.serving.engine import RequestError
from latent_geodesics.serving.robot_state import StateError, check_start
from latent_geodesics.serving.trajectory import Timing, spline_peaks
from latent_geodesics.settings import check_value, setting
from latent_geodesics.world.moveit import (
    OPERATIONS,
    apply,
    change_of,
    changes_of_scene,
    operation_of,
)
from latent_geodesics.world.scene import Scene, SceneError

LATENCY_WINDOW = 200   # the latest requests the latency percentiles cover
# Feedback every refinement iteration: the default polyline refinement converges in
# about ten, so a sparser default would often send none.
FEEDBACK_EVERY = 1


@dataclass(frozen=True)
class NodeSettings:
    """The geodesic server node's own parameters (the engine's are Settings, ~execute's
    ExecutionSettings), the same on ROS 1 and ROS 2."""
    model_dir: str = setting("", "the trained model's directory (required)")
    frame_id: str = setting("latent", "frame of ~latent_path and ~mf_map")
    feedback_every: int = setting(FEEDBACK_EVERY, "refinement iterations between feedback "
                                  "messages", low=1, high=10 ** 6, runtime=True)
    joint_states_max_age: float = setting(1.0, "s; an empty start uses joint_states no older "
                                          "than this (0 = any age)", low=0.0, high=3600.0)
    robot_description_wait: float = setting(2.0, "s to wait at start for a latched "
                                            "robot_description (ROS 2)", low=0.0, high=600.0)


@dataclass
class Reply:
    """A service's or action's answer: success, message, the response's other
    fields as plain data, and for geodesics the engine's result (the front end
    turns its trajectory and stats into its own message types)."""
    success: bool
    message: str
    fields: dict = field(default_factory=dict)
    result: object = None
    cancelled: bool = False


def answered(method):
    """Errors become failed Replies (the server keeps serving); every call's latency
    and outcome go to the health the diagnostics report."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            reply = method(self, *args, **kwargs)
        except (RequestError, StateError) as e:
            reply = Reply(False, str(e))
        except Exception as e:   # never let one request take the node down
            self.log_error("%s failed: %r\n%s" % (method.__name__, e, traceback.format_exc()))
            reply = Reply(False, "internal error: %s" % e)
        self.health.record(time.perf_counter() - started, reply.success)
        return reply
    return call


class GeodesicService:
    """What ~encode, ~decode, ~magnification_factor, ~graph_geodesic,
    ~geodesic_lengths, ~reload, ~nn_geodesic and ~execute's planning do."""

    def __init__(self, engine, joint_state, clock, log_error, feedback_every=FEEDBACK_EVERY):
        """clock() -> seconds (the node's time, for the age of joint_states);
        log_error(text) for failures nobody asked to see in a reply."""
        self.engine, self.joint_state = engine, joint_state
        self.clock, self.log_error = clock, log_error
        self.health = RequestHealth()
        self.feedback_every = check_feedback_every(feedback_every)
        self.scene_listeners = []   # called with each new scene (execution monitoring)

    # --- endpoints -------------------------------------------------------------
    def start(self, msg):
        """The start endpoint; an empty one is the robot's current state."""
        if not is_empty(msg):
            return endpoint(msg)
        names, positions = self.joint_state.current(self.engine.served.joint_names,
                                                    self.clock())
        return names, positions, []

    # --- services ----------------------------------------------------------------
    @answered
    def encode(self, req):
        dim, z = self.engine.encode(req.joint_names, req.positions)
        return Reply(True, "encoded %d configurations" % len(z),
                     dict(latent_dim=dim, latent=z.ravel().tolist()))

    @answered
    def decode(self, req):
        names, x = self.engine.decode(req.latent)
        return Reply(True, "decoded %d points" % len(x),
                     dict(joint_names=names, positions=x.ravel().tolist()))

    @answered
    def magnification_factor(self, req):
        values, log_values = self.engine.magnification(req.latent)
        return Reply(True, "%d points" % len(values),
                     dict(values=values.tolist(), log_values=log_values.tolist()))

    @answered
    def graph_geodesic(self, req):
        result = self.engine.graph_geodesic(self.start(req.start), endpoint(req.goal),
                                            scaling(req))
        return Reply(True, "graph geodesic, %d points" % len(result.latent),
                     geodesic_fields(result), result)

    @answered
    def geodesic_lengths(self, req):
        starts = [endpoint(m) for m in req.starts] or [self.start(EMPTY)]
        lengths = self.engine.geodesic_lengths(starts, [endpoint(m) for m in req.goals])
        return Reply(True, "%d x %d geodesic lengths" % lengths.shape,
                     dict(rows=lengths.shape[0], cols=lengths.shape[1],
                          lengths=lengths.ravel().tolist()))

    @answered
    def reload(self, req, robot_description, planning_limits):
        """robot_description and MoveIt's limits as the front end reads them now."""
        try:
            served = self.swap(req.model_dir or None, robot_description, planning_limits)
        except ModelError as e:
            raise RequestError("reload refused, the old model keeps serving: %s" % e) from None
        self.joint_state.keep = frozenset(served.joint_names)
        return Reply(True, "serving %s (graph %s; joint limits from %s)" % (
            served.model.directory, served.info["graph_source"], served.limits.source),
            result=served)

    @answered
    def apply_robot_description(self, urdf):
        """A robot_description that arrived after the start, applied by a reload of the
        served model; one that cannot be applied is refused and nothing changes."""
        try:
            served = self.swap(None, urdf, self.engine.planning_limits)
        except Exception as e:   # a bad URDF must never end the server
            raise RequestError("robot_description refused, serving on with joint limits from "
                               "%s: %s" % (self.engine.served.limits.source, e)) from None
        return Reply(True, "robot_description received: joint limits from %s"
                     % served.limits.source, result=served)

    def swap(self, model_dir, robot_description, planning_limits):
        """Reload with this URDF and these MoveIt limits; if the reload fails, the
        ones in force stay (the old model keeps serving) and the error is raised."""
        engine = self.engine
        previous = engine.robot_description, engine.planning_limits
        engine.robot_description, engine.planning_limits = robot_description, planning_limits
        try:
            return engine.reload(model_dir)
        except Exception:
            engine.robot_description, engine.planning_limits = previous
            raise

    # --- the refinement action -----------------------------------------------------
    @answered
    def refine(self, goal, publish_feedback, should_stop):
        """publish_feedback(iteration, length) every feedback_every iterations;
        should_stop() -> True cancels: the best curve so far comes back."""
        every = self.feedback_every

        def feedback(iteration, length):
            if iteration % every == 0:
                publish_feedback(iteration, float(length))

        result = self.engine.nn_geodesic(self.start(goal.start), endpoint(goal.goal),
                                         goal.mode, goal.init, goal.max_iterations,
                                         feedback, should_stop, scaling(goal))
        fields = geodesic_fields(result)
        if result.path_stats.cancelled:
            return Reply(False, "cancelled; best curve so far", fields, result, cancelled=True)
        return Reply(True, refined_message(result.stats), fields, result)

    # --- execution ---------------------------------------------------------------------
    def plan_execution(self, goal, should_stop):
        """The geodesic ~execute sends: the graph's, or refined if goal.refine."""
        start, end = self.start(goal.start), endpoint(goal.goal)
        if goal.refine:
            return self.engine.nn_geodesic(start, end, should_stop=should_stop,
                                           scaling=scaling(goal))
        return self.engine.graph_geodesic(start, end, scaling(goal))

    def check_robot_at(self, result, tolerance):
        """StateError unless the robot is at the trajectory's first point (MoveIt's
        allowed_start_tolerance) by the latest joint_states."""
        names = list(result.joint_names)
        _, current = self.joint_state.current(names, self.clock())
        check_start(names, result.positions[0], current, tolerance)

    # --- the robot's world ----------------------------------------------------------
    @answered
    def collision_object(self, msg, transform):
        """A moveit_msgs/CollisionObject; transform(frame_id) -> 4x4 in the root frame."""
        return self._change_scene(lambda: [change_of(msg, transform)], "%s %s" % (
            OPERATIONS.get(operation_of(msg), "?"), msg.id))

    @answered
    def planning_scene(self, msg, transform):
        """A moveit_msgs/PlanningScene: a diff, or a whole world replacing the scene."""
        return self._change_scene(lambda: changes_of_scene(msg, transform), "planning scene %s" % (
            "diff" if msg.is_diff else "(whole world)"))

    @answered
    def load_scene(self, source):
        """The ~scene YAML file (a path or its parsed content) as the whole scene."""
        def changes():
            loaded = Scene.from_yaml(source, self.engine.world.scene.frame)
            return [lambda scene: scene.remove(None)] + [
                lambda scene, obj=obj: scene.add(obj) for obj in loaded.objects.values()]
        return self._change_scene(changes, "the scene file")

    def _change_scene(self, read, what):
        """read() -> the changes (reading a message or file may refuse it: SceneError);
        all of them applied in one update, or none."""
        try:
            changes = read()
            scene = self.engine.world.update(lambda scene: apply(scene, changes))
        except (SceneError, ValueError) as e:
            raise RequestError("scene update refused, the scene is unchanged: %s" % e) from None
        for listener in list(self.scene_listeners):
            listener(scene)
        return Reply(True, "%s applied: %d object(s) in the scene (version %d)" % (
            what, len(scene.objects), scene.version), result=scene)

    def current_scene(self):
        return self.engine.world.scene

    @answered
    def scene_report(self, req=None):
        scene = self.engine.world.scene
        return Reply(True, "%d object(s)" % len(scene.objects), dict(
            frame_id=scene.frame, object_ids=list(scene.object_ids), version=scene.version,
            updated=float(scene.updated or 0.0), objects_yaml=scene.to_yaml()), scene)

    def check_scene(self, result):
        """RequestError when the scene changed since planning and an object now lies on
        the motion: ~execute checks it as the goal is sent."""
        found = self.obstruction(result, 0.0)
        if found is not None:
            hit, at = found
            raise RequestError("not executed: %s is on the path at t = %.2f s (%s would reach "
                               "it); the scene changed after planning: ask again"
                               % (hit.object, at, hit.link))

    def obstruction(self, result, since):
        """The first contact of a served motion's rest (from `since` s on) with the
        scene as it is now, or None: what execution monitoring stops for."""
        world = self.engine.world.view(self.engine.served)
        if world is None:
            return None
        timing = Timing(result.positions, result.time_ns, result.velocities,
                        result.accelerations)
        hit, times, _, _ = world.first_contact(timing, spline_peaks(timing)[1], since)
        return None if hit is None else (hit, float(times[hit.index]))

    def health_report(self):
        return health_report(self.engine.served, self.health, self.joint_state, self.clock())


def check_feedback_every(value):
    return check_value(NodeSettings, "feedback_every", value)


def refined_message(stats):
    """The refinement's answer from its GeodesicSummary."""
    message = "NN geodesic after %d iterations" % stats.iterations
    candidate = stats.candidate
    if candidate in ("initial", "straight"):   # say what is served, not what was tried
        message += "; the %s curve measured shorter and is served" % candidate
    return message


# --- request fields and result payloads (duck-typed on both generations' messages) ---
class _Empty:
    joint_names = positions = latent = ()


EMPTY = _Empty()


def endpoint(msg):
    """An Endpoint message as the engine's (joint_names, positions, latent) triple."""
    return (list(msg.joint_names), list(msg.positions), list(msg.latent))


def is_empty(msg):
    """An empty Endpoint: the robot's current state (latest joint_states)."""
    return not (msg.joint_names or msg.positions or msg.latent)


def scaling(req):
    """MoveIt's scaling factors of a request (0 = 1, checked by the engine)."""
    return req.max_velocity_scaling_factor, req.max_acceleration_scaling_factor


def fill(msg, reply, trajectory_msg, stats_type):
    """A response or result (either generation's) filled from a Reply: its fields, and
    for a geodesic the trajectory (trajectory_msg(result), the front end's message) and
    the stats (stats_type, from the typed summary)."""
    msg.success, msg.message = reply.success, reply.message
    for name, value in reply.fields.items():
        setattr(msg, name, value)
    if hasattr(msg, "trajectory") and hasattr(reply.result, "summary"):
        msg.trajectory = trajectory_msg(reply.result)
        msg.stats = stats_type(**dataclasses.asdict(reply.result.summary()))
    return msg


def geodesic_fields(result):
    """The plain fields GraphGeodesic's response and NNGeodesic's result share."""
    return dict(latent_dim=result.latent.shape[1], latent_path=result.latent.ravel().tolist(),
                length=result.length, straight_line_length=result.straight_line_length)


def trajectory_points(result):
    """(positions, velocities, accelerations, (sec, nanosec)) per trajectory point:
    integer nanoseconds as timed and checked against the limits, not re-rounded."""
    return [(q.tolist(), v.tolist(), a.tolist(), (int(ns // 1_000_000_000),
                                                  int(ns % 1_000_000_000)))
            for q, v, a, ns in zip(result.positions, result.velocities,
                                   result.accelerations, result.time_ns.tolist())]


def path_xyz(latent):
    """Latent points as 3-D positions for a nav Path (dimensions beyond 3 dropped)."""
    return [tuple(float(v) for v in z[:3]) + (0.0,) * (3 - min(3, len(z))) for z in latent]


def serving_threads(settings):
    """Once the model is loaded: torch's CPU threads per request (torch_threads; 0
    keeps torch's default). Requests run in the node's worker threads, where a
    second intra-op thread cost more than it gained; the start-up build used all."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)


# --- health ------------------------------------------------------------------------------
class RequestHealth:
    """Thread-safe counts and latencies of the requests served."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = collections.deque(maxlen=LATENCY_WINDOW)
        self.served = self.failed = 0

    def record(self, seconds, ok):
        with self.lock:
            self.latencies.append(seconds)
            self.served += 1
            self.failed += not ok

    def summary(self):
        with self.lock:
            times = np.array(self.latencies)
            served, failed = self.served, self.failed
        p50, p99 = (1e3 * np.percentile(times, [50, 99])) if len(times) else (0.0, 0.0)
        return served, failed, p50, p99


def health_report(served, health, joint_state, now):
    """(ok, message, [(key, value), ...]) of the server's health: model and device,
    graph size, age of joint_states, request latency and failures since start."""
    requests, failed, p50, p99 = health.summary()
    age = joint_state.age(served.joint_names, now)
    values = [("model", served.model.directory), ("device", str(served.model.device)),
              ("graph nodes", str(len(served.graph))),
              ("graph edges", str(len(served.graph.edges))),
              ("joint_states age (s)", "none" if age is None else "%.3f" % age),
              ("requests", str(requests)), ("failures since start", str(failed)),
              ("latency p50 (ms)", "%.1f" % p50), ("latency p99 (ms)", "%.1f" % p99)]
    if age is None:
        return False, "no joint_states: an empty start is refused", values
    if joint_state.max_age > 0 and age > joint_state.max_age:
        return False, "joint_states %.2f s old (max %.2f s)" % (age, joint_state.max_age), values
    return True, "serving: %d requests, %d failed" % (requests, failed), values
