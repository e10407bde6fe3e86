"""Every command in the README's bash blocks, checked as a new user would meet it.

Run by test/run_rostests.sh (it needs the ROS environment), in a new bash that
sources exactly what the README says. Each command is checked without its side
effects: executables resolve and parse their arguments (`--help`), launch files
accept the arguments given (`roslaunch --nodes`), and service requests and
topic messages written in the README fill their message types.
"""
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SETUP = "source .ws/devel/setup.bash && source .venv/bin/activate"
ROS2_SETUP = "source .venv-ros2/bin/activate"  # ROS 2 keeps its own venv


def readme_commands():
    """(block number, command) for every command line of every bash block."""
    text = Path(os.path.join(ROOT, "README.md")).read_text()
    # The ROS 2 section runs in its own venv: test/ros2/test_readme.py runs it as written.
    text = "\n## ".join(s for s in re.split(r"\n## ", text) if not s.startswith("ROS 2\n"))
    commands = []
    for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, re.S)):
        joined = re.sub(r"\\\n\s*", " ", block)           # line continuations
        pending = ""
        for line in joined.splitlines():
            pending = (pending + " " + line.strip()).strip()
            try:
                shlex.split(pending)
            except ValueError:                           # a quote spans lines
                continue
            line, pending = pending, ""
            line = re.sub(r"\s+#[^\"']*$", "", line).strip()   # trailing comments
            line = re.sub(r"\s*&$", "", line)                  # run in the background
            if line and not line.startswith("#"):
                commands.append((number, line))
    return commands


def run(command):
    """In a new bash from the repository root, after the README's own set-up line."""
    return subprocess.run(["bash", "-c", "%s && %s" % (SETUP, command)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def fill(type_name, payload, service=False):
    """Fill a message (or service request) of type_name from a YAML payload."""
    import genpy.message
    import roslib.message
    import rosservice  # noqa: F401  (registers the service class loader)
    cls = roslib.message.get_service_class(type_name)._request_class if service \
        else roslib.message.get_message_class(type_name)
    assert cls is not None, "unknown type %s" % type_name
    genpy.message.fill_message_args(cls(), [yaml.safe_load(payload)])


SERVICES = {"/geodesic_server/graph_geodesic": "latent_geodesics/GraphGeodesic",
            "/geodesic_server/encode": "latent_geodesics/Encode",
            "/geodesic_server/decode": "latent_geodesics/Decode",
            "/geodesic_server/scene": "latent_geodesics/GetScene",
            "/active_learner/select_queries": "latent_geodesics/SelectQueries"}


def check(command):
    words = shlex.split(command)
    tool = words[0]
    if tool in ("make", "source"):
        return "set-up, run by make test itself"
    if tool in ("mkdir", "cd", "until", "wait", "kill"):
        return ("shell: the robot and active-learning sections' blocks run as written in "
                "test_readme_robot.py and test_readme_learner.py")
    if tool == "rosrun":
        done = run("rosrun %s %s --help" % (words[1], words[2]))
        assert done.returncode == 0, done.stderr
    elif tool == "python" and words[1] == "-m":
        done = run("python -m %s --help" % words[2])
        assert done.returncode == 0, done.stderr
    elif tool == "roslaunch":
        args = [w for w in words[3:] if ":=" in w]
        done = run("roslaunch --nodes %s %s %s" % (words[1], words[2], " ".join(
            shlex.quote(a) for a in args)))
        assert done.returncode == 0, done.stdout + done.stderr
    elif tool == "rosservice" and words[1] == "call":
        fill(SERVICES[words[2]], words[3] if len(words) > 3 else "{}", service=True)
    elif tool == "rostopic" and words[1] == "pub":
        rest = [w for w in words[2:] if not w.startswith("-")]
        fill(rest[1], rest[2])
    elif tool == "rostopic" and words[1] == "echo":
        assert words[-1].startswith("/")
    elif tool == "roscore":
        assert shutil.which("roscore"), "roscore is not installed"
    elif tool == "rosparam" and words[1] == "set":
        path = command.split(" -t ", 1)[1]   # as bash expands it
        assert run("test -f %s" % path).returncode == 0, path
    else:
        pytest.fail("the README command %r is not covered by this check" % command)
    return "checked"


@pytest.mark.parametrize("block,command", readme_commands())
def test_readme_command(block, command):
    check(command)


def test_the_setup_line_works_in_a_new_shell():
    done = run("python -c 'import torch, toppra, latent_geodesics' && which rosrun")
    assert done.returncode == 0, done.stderr


def test_every_section_with_ros_commands_says_how_to_enter_the_environment():
    """A reader who starts at any section, in a new shell, finds the set-up line."""
    text = Path(os.path.join(ROOT, "README.md")).read_text()
    for section in re.split(r"\n## ", text):
        blocks = "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S))
        uses_env = re.search(r"^\s*(rosrun|roslaunch|rosservice|rostopic|python -m)", blocks,
                             re.M)
        if uses_env:
            assert SETUP in blocks or ROS2_SETUP in blocks, \
                "section %r lacks %r" % (section.splitlines()[0], SETUP)
