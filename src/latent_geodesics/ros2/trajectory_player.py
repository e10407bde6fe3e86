"""trajectory_player for ROS 2: plays the latest `trajectory` (remap it to the
server's ~/trajectory) as `joint_states` (remap it away from the robot's own) in a
loop with a pause at the end, for robot_state_publisher and rviz2. Parameters:
rate (Hz), pause (s)."""
import dataclasses
import threading

from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from latent_geodesics.ros2.parameters import declare_settings
from latent_geodesics.serving.trajectory import position_at
from latent_geodesics.settings import setting


@dataclasses.dataclass(frozen=True)
class PlayerSettings:
    rate: float = setting(30.0, "Hz of the joint_states played", low=0.1, high=1000.0)
    pause: float = setting(1.0, "s at the end of each play", low=0.0, high=3600.0)


class TrajectoryPlayer(Node):
    def __init__(self):
        super().__init__("trajectory_player",
                         automatically_declare_parameters_from_overrides=True)
        params = declare_settings(self, PlayerSettings())   # ranges: no rate of 0
        self.pause, rate = params.pause, params.rate
        self.lock = threading.Lock()
        self.latest, self.started = None, None
        self.state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.create_subscription(JointTrajectory, "trajectory", self.on_trajectory, 1)
        self.create_timer(1.0 / rate, self.tick)

    def now(self):
        return self.get_clock().now().nanoseconds / 1e9

    def on_trajectory(self, msg):
        if not msg.points:
            return
        with self.lock:
            self.latest = (list(msg.joint_names),
                           [p.time_from_start.sec * 10 ** 9 + p.time_from_start.nanosec
                            for p in msg.points],
                           [list(p.positions) for p in msg.points])
            self.started = self.now()

    def tick(self):
        with self.lock:
            if self.latest is None:
                return
            names, time_ns, positions = self.latest
            elapsed = self.now() - self.started
        period = time_ns[-1] / 1e9 + self.pause
        state = JointState(name=names, position=position_at(
            time_ns, positions, elapsed % period).tolist())
        state.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(state)
