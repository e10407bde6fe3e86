"""Starting a private roscore and roslaunch/rosbag processes for demos and benchmarks."""
import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

from latent_geodesics.files import open_log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RosProcesses:
    """A roscore on a free port (ROS_MASTER_URI is set for this process and its
    children) and the processes started beside it; `stop()` ends them all."""

    def __init__(self, log_path):
        self.log = open_log(log_path, append=True)   # the processes write it; stop() closes it
        self.procs = []
        port = free_port()
        os.environ["ROS_MASTER_URI"] = "http://127.0.0.1:%d" % port
        os.environ.setdefault("ROS_HOSTNAME", "127.0.0.1")
        self.core = self.start(["roscore", "-p", str(port)])
        import rosgraph
        deadline = time.time() + 60
        while not rosgraph.Master("/processes").is_online():
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("roscore did not come up; see %s" % log_path)
            time.sleep(0.2)

    def start(self, argv):
        proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        self.procs.append(proc)
        return proc

    def launch(self, package, launch_file, **args):
        return self.start(["roslaunch", package, launch_file]
                          + ["%s:=%s" % kv for kv in args.items()])

    @staticmethod
    def end(proc, timeout=20):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self):
        for proc in reversed(self.procs):
            self.end(proc)
        self.log.close()


@contextmanager
def ros_processes(log_path):
    procs = RosProcesses(log_path)
    try:
        yield procs
    finally:
        procs.stop()
