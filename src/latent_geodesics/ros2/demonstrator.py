"""demonstrator for ROS 2: the simulated teacher. Service ~/demonstrate
(srv/Demonstrate). Parameters: system, arm (the simulated Panda) or pendulum;
sample_period (s between a demonstration's points); service_queue_depth."""
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectoryPoint

from latent_geodesics.learning.teachers import (
    TEACHERS,
    DemonstratorSettings,
    Refused,
    teacher_query,
)
from latent_geodesics.ros2.parameters import declare_settings, service_qos
from latent_geodesics.srv import Demonstrate


class Demonstrator(Node):
    def __init__(self):
        super().__init__("demonstrator", automatically_declare_parameters_from_overrides=True)
        params = declare_settings(self, DemonstratorSettings())
        self.teacher = TEACHERS[params.system]()
        self.period = params.sample_period
        # Not `handle`: that is rclpy's Node.handle, which create_service enters.
        self.create_service(Demonstrate, "~/demonstrate", self.on_demonstrate,
                            qos_profile=service_qos(self))

    def on_demonstrate(self, req, res):
        try:
            demo = self.teacher.demonstrate(teacher_query(self.teacher.joint_names,
                                                          req.joint_names, req.positions))
        except Refused as e:
            res.success, res.message = False, "refused: %s" % e
            return res
        res.demonstration.joint_names = list(self.teacher.joint_names)
        res.demonstration.header.stamp = self.get_clock().now().to_msg()
        for i, q in enumerate(demo):
            point = JointTrajectoryPoint(positions=q.tolist())
            ns = int(round(i * self.period * 1e9))
            point.time_from_start.sec, point.time_from_start.nanosec = divmod(ns, 10 ** 9)
            res.demonstration.points.append(point)
        res.success, res.message = True, "%d points" % len(demo)
        return res
