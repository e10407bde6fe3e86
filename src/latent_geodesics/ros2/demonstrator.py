"""demonstrator for ROS 2: the simulated teacher. Service ~/demonstrate
(srv/Demonstrate). Parameter system: arm (the simulated Panda) or pendulum."""
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectoryPoint

from latent_geodesics.learning.teachers import TEACHERS, Refused, teacher_query
from latent_geodesics.srv import Demonstrate


class Demonstrator(Node):
    def __init__(self):
        super().__init__("demonstrator")
        system = self.declare_parameter("system", "arm").value
        if system not in TEACHERS:
            raise ValueError("system must be one of %s, not %r" % (sorted(TEACHERS), system))
        self.teacher = TEACHERS[system]()
        self.period = float(self.declare_parameter("sample_period", 0.1).value)
        self.create_service(Demonstrate, "~/demonstrate", self.handle)

    def handle(self, req, res):
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
