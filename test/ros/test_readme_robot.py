"""The README's robot section run as written, in a new bash per command from a
fresh directory that holds what the repository root holds (the workspace, the
venv, the URDF): write a bag, train from it, start roscore, set the URDF, serve
the trained model, call the service and the action. Commands the README runs in
the background (&) are started and waited for (the master, the server's
services); rviz's view.launch is the demo test's business (it needs a screen).
The one change: roscore gets the test's own port (-p), as ROS_MASTER_URI has it, so
the test never meets a roscore a person runs on the default port.

Needs the ROS environment: run by test/run_rostests.sh."""
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from latent_geodesics.ros.processes import free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECTION = "## Using it on a robot"


def robot_commands():
    """The commands of the README's robot section's first two bash blocks, in order,
    each with whether it runs in the background."""
    text = Path(os.path.join(ROOT, "README.md")).read_text()
    section = text[text.index(SECTION):]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S)[:2]:
        pending = ""
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            pending = (pending + " " + line.strip()).strip()
            try:
                shlex.split(pending)
            except ValueError:           # a quoted argument spans lines
                continue
            line, pending = re.sub(r"\s+#[^\"']*$", "", pending).strip(), ""
            if line:
                commands.append((re.sub(r"\s*&$", "", line), line.endswith("&")))
    return commands


def wait_for(what, check, timeout=240):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out waiting for %s" % what
        time.sleep(0.5)


def test_readme_robot_section_runs_as_written(tmp_path):
    for part in (".ws", ".venv", "urdf"):
        os.symlink(os.path.join(ROOT, part), str(tmp_path / part))
    port = free_port()
    env = dict(os.environ, ROS_MASTER_URI="http://127.0.0.1:%d" % port,
               ROS_HOSTNAME="127.0.0.1")
    bash = lambda command: ["bash", "-c", command]  # noqa: E731
    background, outputs = [], {}
    setup, *commands = robot_commands()
    assert setup[0].startswith("source .ws/devel/setup.bash")

    def run(command):
        return subprocess.run(bash("%s && %s" % (setup[0], command)), cwd=str(tmp_path),
                              env=env, capture_output=True, text=True, timeout=600)

    def service_up(name):
        return run("rosservice list").stdout.split().count(name) > 0
    try:
        for command, in_background in commands:
            if "view.launch" in command:
                continue
            if command == "roscore":
                command = "roscore -p %d" % port
            if in_background:
                log = open(str(tmp_path / ("bg%d.log" % len(background))), "w")  # noqa: SIM115
                background.append(subprocess.Popen(
                    bash("%s && exec %s" % (setup[0], command)), cwd=str(tmp_path), env=env,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
                if command.startswith("roscore "):
                    wait_for("roscore", lambda: run("rosparam list").returncode == 0)
                elif "geodesic_server.launch" in command:
                    wait_for("the server", lambda: service_up("/geodesic_server/graph_geodesic"))
                else:   # a listener: give it time to subscribe
                    time.sleep(3.0)
                continue
            done = run(command)
            outputs[command.split()[0] + " " + command.split()[1]] = done.stdout
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert os.path.isfile(str(tmp_path / "my_model" / "model.yaml"))
        call = outputs["rosservice call"]
        assert "success: True" in call and "data_distance" in call, call[-2000:]
        listener = background[-1]
        listener.wait(timeout=120)
        result = (tmp_path / ("bg%d.log" % (len(background) - 1))).read_text()
        assert "success: True" in result, result[-2000:]
        server_log = (tmp_path / "bg1.log").read_text()
        assert "joint limits from urdf" in server_log   # the URDF was set before the server
    finally:
        for proc in reversed(background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

