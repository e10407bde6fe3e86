"""The README's ROS 2 section run as written: its first bash block (set-up, data,
training, the server in the background), its Python client saved as client.py and
run, then its learner block (the simulated teacher in the background, the learner
for one round), in one bash as a user would type them. The client must get a graph
geodesic, a refined one with feedback, and a cancelled refinement; the learner must
finish its round with the teacher's demonstrations. The learner stays up after its
rounds, as the README says: the test then ends the bash's processes."""
import os
import re
import signal
import subprocess
import time

from .conftest import ROOT, node_env

SECTION = "## ROS 2\n"


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", 1)]
    return (re.findall(r"```bash\n(.*?)```", section, re.S),
            re.findall(r"```python\n(.*?)```", section, re.S))


def test_the_readme_ros2_section_runs_as_written(tmp_path):
    (setup, learner, *_), (client, *_) = readme_blocks()
    script = (setup + "cat > client.py <<'CLIENT'\n" + client + "CLIENT\n"
              + "python client.py\n" + learner)
    env = node_env()
    env.pop("PYTHONPATH")   # as written: the package comes from the venv
    log = tmp_path / "section.log"
    with open(str(log), "w") as f:
        bash = subprocess.Popen(["bash", "-e", "-c", script], cwd=str(ROOT), env=env,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 900
    while time.time() < deadline and bash.poll() is None \
            and "active learning finished" not in log.read_text():
        time.sleep(1.0)
    status = bash.poll()
    for sig in (signal.SIGINT, signal.SIGKILL):   # Ctrl-C, then whatever is left
        try:
            os.killpg(bash.pid, sig)
        except ProcessLookupError:
            break
        time.sleep(5.0)
    bash.wait(timeout=60)
    out = log.read_text()
    assert status is None, out[-3000:]   # the learner stays up after its round
    assert re.search(r"graph geodesic: graph geodesic, \d+ points", out), out[-3000:]
    assert re.search(r"iteration \d+, length \d", out)
    assert "refined: NN geodesic after" in out and "- status True" in out
    assert "cancelled: cancelled; best curve so far - status True" in out, out[-3000:]
    assert re.search(r"round 1 query 0: demonstration stored", out), out[-3000:]
    assert "active learning finished: 1 rounds" in out, out[-3000:]
