"""ROS 2 (Jazzy) nodes: the ROS 1 nodes' interfaces over the same core, in rclpy.

Started with `python -m latent_geodesics.ros2 NODE [--params-file F] [--ros-args ...]`
(see __main__.py), which needs nothing beyond the PyPI wheels; launch/ros2.launch.py
does the same where launch_ros is installed."""
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

THREADS = 8   # services, the action and the subscriptions each get threads of their own


def run_node(node_class, args=None):
    """rclpy.init, construct the node, spin it on a multi-threaded executor until
    SIGINT; a bad set-up is one fatal log line and exit status 1."""
    rclpy.init(args=args)
    try:
        node = node_class()
    except (ValueError, KeyError, OSError) as e:
        rclpy.logging.get_logger(node_class.__name__).fatal("cannot start: %s" % e)
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    node.get_logger().info("%s ready" % node.get_name())
    executor = MultiThreadedExecutor(num_threads=THREADS)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
