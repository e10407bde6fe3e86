"""The server's health on /diagnostics (diagnostic_updater), for rqt_robot_monitor
and the robot's diagnostic_aggregator: model and device, graph size, the age of
joint_states, request latency and failures since start."""
import collections
import threading

import diagnostic_updater
import numpy as np
import rospy
from diagnostic_msgs.msg import DiagnosticStatus

LATENCY_WINDOW = 200   # the latest requests the latency percentiles cover


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


class ServerDiagnostics:
    def __init__(self, server, period=1.0):
        self.server = server
        self.updater = diagnostic_updater.Updater()
        self.updater.setHardwareID("latent_geodesics/" + rospy.get_name().lstrip("/"))
        self.updater.add("geodesic server", self.report)
        self.timer = rospy.Timer(rospy.Duration(period), lambda _: self.updater.update())

    def report(self, stat):
        served = self.server.engine.served
        requests, failed, p50, p99 = self.server.health.summary()
        age = self.server.joint_state.age(served.joint_names, rospy.get_time())
        stat.add("model", served.model.directory)
        stat.add("device", str(served.model.device))
        stat.add("graph nodes", str(len(served.graph)))
        stat.add("graph edges", str(len(served.graph.edges)))
        stat.add("joint_states age (s)", "none" if age is None else "%.3f" % age)
        stat.add("requests", str(requests))
        stat.add("failures since start", str(failed))
        stat.add("latency p50 (ms)", "%.1f" % p50)
        stat.add("latency p99 (ms)", "%.1f" % p99)
        max_age = self.server.joint_state.max_age
        if age is None:
            stat.summary(DiagnosticStatus.WARN, "no joint_states: an empty start is refused")
        elif max_age > 0 and age > max_age:
            stat.summary(DiagnosticStatus.WARN, "joint_states %.2f s old (max %.2f s)"
                         % (age, max_age))
        else:
            stat.summary(DiagnosticStatus.OK, "serving: %d requests, %d failed"
                         % (requests, failed))
        return stat
