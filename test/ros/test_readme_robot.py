"""The README's robot section pasted as it stands: its first three bash blocks,
taken from README.md, run one after the other in one bash started at the
repository root, as a user pastes them into one shell. Nothing is added or left
out. The environment is a new user's: a home directory of its own (the blocks
work in ~/lg_robot), no ROS_MASTER_URI (the block's roscore takes the default
port, 11311, which must be free) and a virtual screen (Xvfb, which `make test`
installs) for the viewer. Then what the blocks promise: the graph geodesic and
the action answered with success, the URDF's limits in force, the viewer's ghost
playing the motion, the box sent on /collision_object in the server's scene and
the same request served around it, nothing written into the repository.

Needs the ROS environment: run by test/run_rostests.sh."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECTION = "## Using it on a robot"
MASTER_PORT = 11311   # roscore's own default: the block runs it without -p


def readme_blocks():
    """The robot section's first three bash blocks, as README.md has them."""
    text = Path(ROOT, "README.md").read_text()
    return re.findall(r"```bash\n(.*?)```", text[text.index(SECTION):], re.S)[:3]


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def virtual_screen():
    """An Xvfb display for the viewer; yields its DISPLAY value."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x860x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            yield ":" + f.readline().strip()
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=30)


def stop_group(pgid, timeout=60):
    """SIGTERM the blocks' processes (roslaunch stops its nodes on it), then SIGKILL
    what is left. They outlive the bash that started them in the background."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def in_ros(env, command, timeout=60):
    """A command in the workspace's environment (not the blocks' shell)."""
    return subprocess.run(["bash", "-c", "source .ws/devel/setup.bash && " + command],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def first_message(env, topic, timeout=120):
    """The first message on topic as rostopic prints it; empty if none came."""
    try:
        return in_ros(env, "rostopic echo -n 1 " + topic, timeout).stdout
    except subprocess.TimeoutExpired:
        return ""


def wait_for_node(env, name, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if name in in_ros(env, "rosnode list").stdout.split():
            return True
        time.sleep(2.0)
    return False


def test_readme_robot_blocks_run_as_pasted(tmp_path):
    assert not port_in_use(MASTER_PORT), (
        "a ROS master already runs on port %d: the README's block starts its own roscore "
        "there; stop the other one to run this test" % MASTER_PORT)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ROS_MASTER_URI"}
    root_before = sorted(os.listdir(ROOT))
    log_path = tmp_path / "blocks.log"
    with virtual_screen() as display, open(str(log_path), "w") as log:
        env.update(HOME=str(home), DISPLAY=display)
        blocks = subprocess.Popen(["bash", "-c", "\n".join(readme_blocks())], cwd=ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            try:
                status = blocks.wait(timeout=1500)
            except subprocess.TimeoutExpired:
                status = "still running after 1500 s"
            ran = status == 0   # else the log says why: no viewer to wait for
            viewer_up = ran and wait_for_node(env, "/viz/rviz")
            ghost = first_message(env, "/viz/joint_states") if ran else ""
        finally:
            stop_group(blocks.pid)
    out = log_path.read_text()
    assert status == 0, out[-3000:]
    assert re.search(r"^success: True$", out, re.M), out[-3000:]           # the service
    assert re.search(r"^  success: True$", out, re.M), out[-3000:]         # the action
    served = float(re.findall(r"^\s+data_distance: (\S+)$", out, re.M)[0])
    chord = float(re.findall(r"^\s+chord_data_distance: (\S+)$", out, re.M)[0])
    assert served < chord, (served, chord)   # the README's claim for its example pair
    assert "joint limits from urdf" in out   # the URDF was set before the server started
    assert (home / "lg_robot" / "my_model" / "model.yaml").is_file()
    assert viewer_up and "process has died" not in out, out[-3000:]
    assert "panda_joint1" in ghost, ghost   # the ghost plays the motion
    assert re.search(r"^object_ids: \n  - box$", out, re.M), out[-3000:]   # in the scene
    clearances = re.findall(r"^\s+min_clearance: (\S+)$", out, re.M)
    assert clearances[0] == "inf" and float(clearances[-1]) > 0, clearances  # around it
    assert re.findall(r"^\s+clearance_object: \"?(\w*)\"?$", out, re.M)[-1] == "box"
    assert sorted(os.listdir(ROOT)) == root_before


def test_launch_files_take_relative_paths_from_the_callers_directory(tmp_path):
    """Nodes run in ~/.ros: a relative model_dir (or data, or work directory) is made
    the directory roslaunch was started in, ~/ the home directory."""
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    params = in_ros(env, "cd %s && roslaunch --dump-params latent_geodesics "
                         "active_learning.launch model_dir:=my_model initial_data:=~/d.npz "
                         "work_dir:=/abs/al" % tmp_path).stdout
    assert "/geodesic_server/model_dir: %s/my_model" % tmp_path in params, params
    assert "/active_learner/model_dir: %s/my_model" % tmp_path in params
    assert "/active_learner/initial_data: %s/home/d.npz" % tmp_path in params
    assert "/active_learner/work_dir: /abs/al" in params
