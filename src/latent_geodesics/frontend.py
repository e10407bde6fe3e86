"""What the ROS 1 and ROS 2 front ends share: request fields into the engine's
arguments, results into response fields, and the server's health. Duck-typed on
the messages (both generations have the same field names), so no ROS import."""
import collections
import dataclasses
import threading

import numpy as np
import torch

LATENCY_WINDOW = 200   # the latest requests the latency percentiles cover


def serving_threads(settings):
    """Once the model is loaded: torch's CPU threads per request (torch_threads; 0
    keeps torch's default). Requests run in the node's worker threads, where a
    second intra-op thread cost more than it gained; the start-up build used all."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)


def endpoint(msg):
    """An Endpoint message as the engine's (joint_names, positions, latent) triple."""
    return (list(msg.joint_names), list(msg.positions), list(msg.latent))


def is_empty(msg):
    """An empty Endpoint: the robot's current state (latest joint_states)."""
    return not (msg.joint_names or msg.positions or msg.latent)


def scaling(req):
    """MoveIt's scaling factors of a request (0 = 1, checked by the engine)."""
    return req.max_velocity_scaling_factor, req.max_acceleration_scaling_factor


def result_fields(result, trajectory, stats_type):
    """The fields GraphGeodesic's response and NNGeodesic's result share."""
    return dict(latent_dim=result.latent.shape[1], latent_path=result.latent.ravel().tolist(),
                trajectory=trajectory, length=result.length,
                straight_line_length=result.straight_line_length,
                stats=stats_type(**dataclasses.asdict(result.summary())))


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


def query_fields(queries, joint_names):
    """SelectQueries' response fields of active_learning.select_queries' result."""
    return dict(latent_dim=queries.latent.shape[1], latent=queries.latent.ravel().tolist(),
                joint_names=list(joint_names), positions=queries.positions.ravel().tolist(),
                scores=queries.scores.tolist())


def check_select_request(selector, n, selectors):
    """The reason a SelectQueries request is refused, or None."""
    if selector not in selectors:
        return "selector must be one of %s" % ", ".join(selectors)
    if not 1 <= n <= 1000:
        return "n must be 1..1000, not %d" % n
    return None


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
