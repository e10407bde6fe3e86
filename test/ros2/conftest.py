"""ROS 2 test harness: real rclpy nodes in their own processes (python -m
latent_geodesics.ros2 ...), on a DDS domain of this run's own, called from a client
node in the test process. Run by `make test` in the ROS 2 venv (test/run_ros2_tests.sh)."""
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import rclpy  # noqa: E402  (after the domain is chosen)


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    """The rostests' fixture models (trained fresh; LG_FIXTURE_DIR reuses a directory
    that test/ros/train_fixture.py filled)."""
    given = os.environ.get("LG_FIXTURE_DIR")
    if given and (Path(given) / "fixture_model_b").is_dir():
        return Path(given)
    out = tmp_path_factory.mktemp("fixture")
    subprocess.run([sys.executable, str(ROOT / "test" / "ros" / "train_fixture.py"), str(out)],
                   check=True, env=node_env())
    return out


@pytest.fixture(scope="session")
def arm_data(fixture_dir):
    data = np.load(fixture_dir / "fixture_data.npz")
    return data["data"], [str(n) for n in data["joint_names"]]


def node_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    return env


class NodeProcess:
    """One node started as a user starts it: python -m latent_geodesics.ros2 ..."""

    def __init__(self, args, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115  (closed by stop())
        self.proc = subprocess.Popen([sys.executable, "-m", "latent_geodesics.ros2", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=node_env(),
                                     cwd=str(ROOT))

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return Path(self.log_path).read_text()

    def stop(self, timeout=20):
        """SIGINT, as Ctrl-C: the node must shut down cleanly (exit status 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def start_node(tmp_path_factory):
    started = []

    def start(*args, name="node"):
        node = NodeProcess(list(args), tmp_path_factory.mktemp("logs") / (name + ".log"))
        started.append(node)
        return node
    yield start
    for node in reversed(started):
        node.stop()


@pytest.fixture(scope="session")
def client():
    rclpy.init()
    node = rclpy.create_node("test_client_%d" % os.getpid())
    yield Client(node)
    node.destroy_node()
    rclpy.try_shutdown()


class Client:
    """Calls from the test process, each spun to completion with a timeout."""

    def __init__(self, node):
        self.node = node
        self.clients = {}

    def wait(self, kind, name, timeout=120):
        key = (kind, name)
        if key not in self.clients:
            self.clients[key] = self.node.create_client(kind, name)
        assert self.clients[key].wait_for_service(timeout_sec=timeout), "no service " + name
        return self.clients[key]

    def call(self, kind, name, timeout=60, **fields):
        """The answer, within timeout. A request sent just after the service was
        discovered can be lost when the client's reply reader is not matched yet (a
        DDS discovery race: the server answers, the answer never arrives); so a
        request not answered within timeout goes out once more."""
        client = self.wait(kind, name)
        for _ in range(2):
            future = client.call_async(kind.Request(**fields))
            self.spin_until(future, timeout)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError("%s did not answer within 2 x %d s" % (name, timeout))

    def spin_until(self, future, timeout):
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        return future.result()

    def spin_for(self, seconds, until=lambda: False):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            rclpy.spin_once(self.node, timeout_sec=0.05)
