"""ROS 2 (Jazzy) nodes: the ROS 1 nodes' interfaces over the same core, in rclpy.

Started with `python -m latent_geodesics.ros2 NODE [--params-file F] [--ros-args ...]`
(see __main__.py), which needs nothing beyond the PyPI wheels; launch/ros2.launch.py
does the same where launch_ros is installed."""
import faulthandler
import os
import signal
import sys
import threading

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

THREADS = 8      # services, the action and the subscriptions each get threads of their own
SHUTDOWN_S = 10  # s for running callbacks to finish after Ctrl-C
STUCK_S = 15     # s after Ctrl-C: the process reports where it hangs and exits


def run_node(node_class, args=None):
    """rclpy.init, construct the node, spin it on a multi-threaded executor until
    SIGINT; a bad set-up is one fatal log line and exit status 1.

    On Ctrl-C rclpy's own handler shuts the context down and the spin returns. The
    Python handler it chains to does nothing: a KeyboardInterrupt raised at an
    arbitrary point of the main thread could leave a lock of the executor's thread
    pool held, and the shutdown would then wait forever."""
    signal.signal(signal.SIGINT, lambda *_: None)
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # kill -USR1: every stack
    rclpy.init(args=args)
    try:
        node = node_class()
    except (ValueError, KeyError, OSError, ParameterException) as e:   # e.g. out of range
        rclpy.logging.get_logger(node_class.__name__).fatal("cannot start: %s" % e)
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    node.get_logger().info("%s ready" % node.get_name())
    executor = MultiThreadedExecutor(num_threads=THREADS)
    try:
        executor.add_node(node)
        executor.spin()
    except ExternalShutdownException:
        pass
    except RCLError:
        # Ctrl-C's shutdown can land between the executor's check of the context and
        # its wait (rclpy then raises this, not ExternalShutdownException): the same end.
        if node.context.ok():
            raise
    finally:
        # A daemon timer outlives run_node: it also covers the interpreter's wait for
        # threads at exit.
        watchdog = threading.Timer(STUCK_S, stuck_shutdown)
        watchdog.daemon = True
        watchdog.start()
        executor.shutdown(timeout_sec=SHUTDOWN_S)
        node.destroy_node()
        rclpy.try_shutdown()


def stuck_shutdown():
    """The shutdown did not finish: say where every thread is, and exit anyway."""
    sys.stderr.write("shutdown did not finish within %d s; the threads:\n" % STUCK_S)
    faulthandler.dump_traceback(all_threads=True)
    os._exit(1)
