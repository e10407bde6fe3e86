"""The README's active-learning blocks (ROS 1) pasted as they stand: each block,
taken from README.md, run in a new bash at the root of a directory laid out as
`make demo` leaves the repository (out/model, out/carry_data.npz; the repository's
workspace and venv linked in), as the README says to run them. Nothing is added to
a block or left out. Then what the blocks promise: with a teacher of the user's own
that is not up yet, round 0's metrics and the learner saying which service it waits
for; with the simulated arm as teacher, rounds 0 and 1 and five queries chosen.

Needs the ROS environment: run by test/run_rostests.sh."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_readme_robot import MASTER_PORT, ROOT, port_in_use, stop_group

SECTION = "## Active learning: `active_learner` and `demonstrator`"


def section_blocks():
    """The section's first two bash blocks, as README.md has them."""
    text = Path(ROOT, "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```bash\n(.*?)```", section, re.S)[:2]


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory):
    """A directory as `make demo` leaves the repository for these blocks: the demo's
    carries and a model of them, of the demo's latent dimension (fewer epochs than the
    demo's: seconds)."""
    sys.path.insert(0, ROOT)
    from demo import LATENT_DIM
    from demo.task import carry_dataset
    from latent_geodesics.model.iwae import save_model
    from latent_geodesics.model.training import train_iwae
    root = tmp_path_factory.mktemp("after_demo")
    for name in (".ws", ".venv"):
        os.symlink(os.path.join(ROOT, name), str(root / name))
    out = root / "out"
    out.mkdir()
    carry = carry_dataset(seed=0)
    np.savez(str(out / "carry_data.npz"), data=carry.data,
             joint_names=np.array(carry.joint_names))
    model, _ = train_iwae(carry.data, carry.joint_names, latent_dim=LATENT_DIM, epochs=40,
                          seed=0, device="cpu", progress=False)
    save_model(model, str(out / "model"), model.meta)
    return root


def run_block(block, cwd, log_path, timeout):
    """The block in a new bash of its own session; (exit status or None, its pgid)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_MASTER_URI", "PYTHONPATH")}
    with open(str(log_path), "w") as log:
        bash = subprocess.Popen(["bash", "-c", block], cwd=str(cwd), env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return bash.wait(timeout=timeout), bash.pid
    except subprocess.TimeoutExpired:
        return None, bash.pid


def eventually(check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not check():
        time.sleep(1.0)
    return check()


def rounds(out):
    return [int(r) for r in re.findall(r"^round: (\d+)$", out, re.M)]


@pytest.fixture
def free_master_port():
    assert not port_in_use(MASTER_PORT), (
        "a ROS master already runs on port %d: the README's blocks start their own there; "
        "stop the other one to run this test" % MASTER_PORT)
    yield
    assert eventually(lambda: not port_in_use(MASTER_PORT), 60), "the blocks' master lives on"


def test_own_teacher_block(after_demo, free_master_port, tmp_path):
    log = tmp_path / "block.log"
    status, group = run_block(section_blocks()[0], after_demo, log, timeout=600)
    try:
        waiting = eventually(lambda: "/my_teacher/demonstrate" in log.read_text())
    finally:
        stop_group(group)
    out = log.read_text()
    assert status == 0, out[-3000:]
    assert rounds(out) == [0], out[-3000:]   # the baseline, printed by the block's echo
    assert waiting and re.search(r"waiting for the teacher: no node offers "
                                 r"/my_teacher/demonstrate", out), out[-3000:]
    assert (after_demo / "out" / "al_robot").is_dir()


def test_simulated_teacher_block(after_demo, free_master_port, tmp_path):
    log = tmp_path / "block.log"
    status, group = run_block(section_blocks()[1], after_demo, log, timeout=900)
    stop_group(group)
    out = log.read_text()
    assert status == 0, out[-3000:]
    assert rounds(out) == [0, 1], out[-3000:]
    demonstrated = re.findall(r"^demonstrations: (\d+)$", out, re.M)
    assert int(demonstrated[1]) > 0, out[-3000:]   # round 1 learned from the teacher
    assert re.search(r"^success: True$", out, re.M), out[-3000:]   # select_queries
    scores = re.search(r"^scores: \[(.*)\]$", out, re.M)
    assert scores and len(scores.group(1).split(",")) == 5, out[-3000:]
