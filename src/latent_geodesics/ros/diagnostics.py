"""The server's health on /diagnostics (diagnostic_updater), for rqt_robot_monitor
and the robot's diagnostic_aggregator: model and device, graph size, the age of
joint_states, request latency and failures since start."""
import diagnostic_updater
import rospy
from diagnostic_msgs.msg import DiagnosticStatus


class ServerDiagnostics:
    def __init__(self, server, period=1.0):
        self.server = server
        self.updater = diagnostic_updater.Updater()
        self.updater.setHardwareID("latent_geodesics/" + rospy.get_name().lstrip("/"))
        self.updater.add("geodesic server", self.report)
        self.timer = rospy.Timer(rospy.Duration(period), lambda _: self.updater.update())

    def report(self, stat):
        ok, message, values = self.server.service.health_report()
        for key, value in values:
            stat.add(key, value)
        stat.summary(DiagnosticStatus.OK if ok else DiagnosticStatus.WARN, message)
        return stat
