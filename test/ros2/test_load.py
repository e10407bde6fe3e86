"""Many client processes calling one service of the ROS 2 geodesic_server at once:
every call is answered. With a service queue shorter than the number of callers
(ROS 2's default depth of 10 against 24 processes) DDS drops requests and their
callers wait forever; service_queue_depth sizes the queues."""
import json
import subprocess
import sys
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray

from latent_geodesics.srv import Encode

from .conftest import node_env

PROCESSES = 24     # separate client processes, each with its own DDS participant
CALLS = 20         # calls per process, one after another
CALL_TIMEOUT = 60  # s: an answer later than this counts as lost
S = "/load_server/"


def start_clients(request, go_file):
    script = str(Path(__file__).with_name("load_client.py"))
    return [subprocess.Popen([sys.executable, script, S + "encode", str(CALLS),
                              str(CALL_TIMEOUT), str(go_file), json.dumps(request)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=node_env())
            for _ in range(PROCESSES)]


def wait_ready(proc):
    """Its output up to its "ready" line (all of it if it ended without one)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.strip() == "ready":
            break
    return "".join(seen)


def requests_served(client):
    """The requests the server has answered since its start (its /diagnostics)."""
    counts = []

    def on_diagnostics(msg):
        counts.extend(int(v.value) for status in msg.status if "load_server" in status.name
                      for v in status.values if v.key == "requests")
    sub = client.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    client.spin_for(10, until=lambda: counts)
    client.node.destroy_subscription(sub)
    return counts[-1] if counts else None


def test_every_call_of_24_client_processes_is_answered(fixture_dir, start_node, client,
                                                      arm_data, tmp_path):
    server = start_node("server", "--ros-args", "-r", "__node:=load_server",
                        "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                        "-p", "device:=cpu", "-p", "robot_description_wait:=0.0",
                        name="load_server")
    client.wait(Encode, S + "encode")
    q, names = arm_data
    go_file = tmp_path / "go"
    procs = start_clients({"joint_names": names, "positions": q[0].tolist()}, go_file)
    try:
        for proc in procs:
            started = wait_ready(proc)
            assert started.endswith("ready\n"), started[-3000:]
        go_file.touch()   # every process starts calling at once
        outputs = [proc.communicate(timeout=CALLS * CALL_TIMEOUT + 60)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    lost = [r["lost"] for r in results]
    assert sum(lost) == 0, "calls lost per process: %s (the calls: %s); the server " \
        "answered %s requests" % (lost, [r["lost_at"] for r in results],
                                  requests_served(client))
    assert sum(r["answered"] for r in results) == PROCESSES * CALLS
    assert sum(r["refused"] for r in results) == 0, outputs[0][-3000:]
    assert server.proc.poll() is None, server.output()[-3000:]
