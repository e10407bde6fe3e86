"""The ROS 2 simulated teacher started as the README shows (`python -m
latent_geodesics.ros2 demonstrator --ros-args -p system:=arm`), asked as the
learner asks it, and the learner's line while it waits for a teacher."""
import re
import threading
import time

import numpy as np

from latent_geodesics.ros2.active_learner import wait_for_teacher
from latent_geodesics.srv import Demonstrate

D = "/demonstrator/demonstrate"
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]


def test_the_demonstrator_started_as_the_readme_shows_answers_and_refuses(start_node,
                                                                          client):
    node = start_node("demonstrator", "--ros-args", "-p", "system:=arm", name="demonstrator")
    try:
        client.wait(Demonstrate, D, timeout=60)
    except AssertionError:
        raise AssertionError(node.output()[-3000:]) from None
    res = client.call(Demonstrate, D, joint_names=NAMES[::-1], positions=HOME[::-1])
    assert res.success, res.message
    points = res.demonstration.points
    assert len(points) > 5 and list(res.demonstration.joint_names) == NAMES
    seconds = [p.time_from_start.sec + p.time_from_start.nanosec / 1e9 for p in points]
    assert np.allclose(np.diff(seconds), 0.1)   # sample_period
    passes = min(np.abs(np.array(p.positions) - HOME).max() for p in points)
    assert passes < 0.1, passes   # a demonstration through the query
    into_table = [0.0, 1.5, 0.0, -0.6, 0.0, 1.5, 0.8]
    res = client.call(Demonstrate, D, joint_names=NAMES, positions=into_table)
    assert not res.success and "collision" in res.message, res.message
    res = client.call(Demonstrate, D, joint_names=["elbow"] + NAMES[1:], positions=HOME)
    assert not res.success and "joint names" in res.message, res.message
    assert node.stop() == 0, node.output()[-3000:]
    assert "Traceback" not in node.output()


def test_the_learner_says_how_long_it_has_waited_for_its_teacher(client):
    teacher = client.node.create_client(Demonstrate, "/late_teacher/demonstrate")
    lines, started = [], time.monotonic()
    waiting = threading.Thread(target=wait_for_teacher, args=(
        teacher, lambda text: lines.append((time.monotonic() - started, text)), 0.5, 1.0))
    waiting.start()
    time.sleep(3.2)   # lines at about 0.5, 1.5 and 2.5 s
    service = client.node.create_service(Demonstrate, "/late_teacher/demonstrate",
                                         lambda req, res: res)
    waiting.join(30)
    client.node.destroy_service(service)
    assert not waiting.is_alive(), "still waiting for a teacher that is up"
    assert len(lines) >= 3, lines
    for at, text in lines:
        said = re.search(r"\(([\d.]+) s so far\)", text)
        assert said and abs(float(said.group(1)) - at) < 0.3, (at, text)
