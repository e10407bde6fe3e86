"""Nodes started with a broken set-up exit with one fatal line, not a traceback.

Needs ROS (a roscore on its own port): run by test/run_rostests.sh with pytest."""
import subprocess

import pytest

from latent_geodesics.ros.processes import ros_processes


@pytest.fixture(scope="module")
def roscore(tmp_path_factory):
    with ros_processes(str(tmp_path_factory.mktemp("ros") / "ros.log")) as ros:
        yield ros


@pytest.mark.parametrize("node,args,fragment", [
    ("geodesic_server", ["_model_dir:=/nonexistent/model"],
     "cannot start: model directory '/nonexistent/model' does not exist"),
    ("geodesic_server", ["__name:=server_without_model"],
     "cannot start: parameter ~model_dir is required"),
    ("geodesic_server", ["_k:=0", "_model_dir:=/nonexistent/model", "__name:=server_k0"],
     "cannot start: parameter k must be an integer >= 1 and <= 1000, not 0"),
    ("demonstrator", ["_system:=boat"], "cannot start: parameter system must be one of arm, "
                                        "pendulum, not 'boat'"),
    ("active_learner", ["_rounds:=0", "__name:=learner_no_rounds"],
     "cannot start: parameter rounds must be an integer >= 1 and <= 1000000, not 0"),
    ("active_learner", ["_selector:=best", "__name:=learner_bad_selector"],
     "cannot start: parameter selector must be one of combined, random, uncertainty, mf"),
])
def test_broken_setup_is_one_fatal_line(roscore, node, args, fragment):
    # Private parameters outlive a node on the master: each case has its own name.
    done = subprocess.run(["rosrun", "latent_geodesics", node] + args, capture_output=True,
                          text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert fragment in output
    assert "Traceback" not in output


def test_learner_with_a_damaged_store_is_one_fatal_line(roscore, tmp_path):
    store = tmp_path / "demonstrations.db"
    store.write_bytes(b"this is not an SQLite database" * 100)
    done = subprocess.run(["rosrun", "latent_geodesics", "active_learner",
                           "__name:=learner_damaged", "_store:=%s" % store,
                           "_work_dir:=%s" % tmp_path], capture_output=True, text=True,
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "cannot start: demonstration store %s is damaged" % store in output
    assert "Traceback" not in output
