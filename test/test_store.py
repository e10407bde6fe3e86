"""DemoStore: transactions, export, and a learner killed with SIGKILL that resumes."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from latent_geodesics.data import load_data
from latent_geodesics.learning.selection import Queries
from latent_geodesics.learning.store import DemoStore, StoreError

NAMES = ["a", "b"]


def queries(n=3):
    return Queries(np.zeros((n, 2)), np.arange(2 * n, dtype=float).reshape(n, 2),
                   np.ones(n), "combined")


def test_round_trip_and_export(tmp_path):
    store = DemoStore(str(tmp_path / "s.db"))
    assert store.seed(np.ones((4, 2)), NAMES)
    assert not store.seed(np.ones((4, 2)), NAMES)           # once only
    store.start_round(1, "/m0", "combined", queries())
    assert [i for i, _ in store.pending(1)] == [0, 1, 2]
    demo_id = store.add_demonstration(1, 0, "/m0", np.full((3, 2), 2.0))
    store.refuse(1, 1, "in collision")
    assert store.query_counts(1) == {"answered": 1, "refused": 1, "pending": 1}
    assert [i for i, _ in store.pending(1)] == [2]
    positions, statuses = store.queries(1)
    assert np.array_equal(positions, queries().positions)
    assert statuses == ["answered", "refused", "pending"]
    assert store.queries(2)[0].shape[0] == 0
    assert store.demonstration_ids() == [demo_id]
    data, names = store.data()
    assert names == NAMES and data.shape == (7, 2)
    for ext in ("csv", "npz"):
        path = str(tmp_path / ("d." + ext))
        assert store.export(path) == 7
        loaded, loaded_names = load_data(path)
        assert loaded_names == NAMES and np.array_equal(loaded, data)


def test_duplicates_and_bad_demonstrations_are_refused(tmp_path):
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.ones((4, 2)), NAMES)
    store.start_round(1, "/m0", "combined", queries())
    store.add_demonstration(1, 0, "/m0", np.ones((2, 2)))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_demonstration(1, 0, "/m0", np.ones((2, 2)))   # UNIQUE(round, query)
    with pytest.raises(StoreError):
        store.add_demonstration(1, 1, "/m0", np.ones((2, 3)))
    with pytest.raises(StoreError):
        store.add_demonstration(1, 1, "/m0", np.full((2, 2), np.nan))
    assert len(store.demonstration_ids()) == 1


@pytest.mark.slow
def test_learner_killed_with_sigkill_resumes_without_loss(arm, arm_model_dir, tmp_path):
    """Kill the real learner process at random moments; restart until it finishes."""
    np.savez(tmp_path / "initial.npz", data=arm.data, joint_names=np.array(arm.joint_names))
    cmd = [sys.executable, "-m", "latent_geodesics.learning.loop",
           "--store", str(tmp_path / "s.db"),
           "--work", str(tmp_path / "work"), "--model", arm_model_dir,
           "--initial-data", str(tmp_path / "initial.npz"), "--rounds", "2", "--queries", "3",
           "--epochs", "2", "--device", "cpu"]
    rng = random.Random(0)
    acked, kills = set(), 0
    for attempt in range(12):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        if attempt < 4:   # the first runs die at random moments
            time.sleep(rng.uniform(1.0, 6.0))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        out, _ = proc.communicate(timeout=600)
        acked |= {int(line.split()[3]) for line in out.splitlines() if line.startswith("ACK")}
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, out
    assert kills >= 2
    store = DemoStore(str(tmp_path / "s.db"))
    ids = store.demonstration_ids()
    assert acked <= set(ids)                              # nothing acknowledged was lost
    assert len(ids) == len(set(ids))
    rows = store.db.execute("SELECT round, query_idx FROM demonstrations WHERE round > 0"
                            ).fetchall()
    assert len(rows) == len(set(rows))                    # none duplicated
    answered = store.db.execute("SELECT COUNT(*) FROM queries WHERE status='answered'"
                                ).fetchone()[0]
    assert answered == len(ids)
    assert store.current_round() == (2, "done")           # the round counter is right
    assert store.db.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == 6
    for r in (1, 2):
        assert os.path.isfile(os.path.join(store.round_info(r)["trained_model_dir"],
                                           "model.yaml"))
    leftovers = os.listdir(tmp_path / "work" / "models")   # half-written models are removed
    assert sorted(leftovers) == ["round_1", "round_2"], leftovers


@pytest.mark.parametrize("damage", ["header", "truncate"])
def test_damaged_store_is_a_clear_error(tmp_path, damage):
    path = str(tmp_path / "s.db")
    store = DemoStore(path)
    store.seed(np.ones((400, 2)), NAMES)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if damage == "header":
            f.write(b"x" * 100)
        else:
            f.truncate(size // 2)
    with pytest.raises(StoreError, match="s.db is damaged.*new work_dir"):
        DemoStore(path)


HOLD_THE_STORE = """
import sys, time
from latent_geodesics.learning.store import DemoStore
DemoStore(sys.argv[1]).claim()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_learner_on_one_store_is_refused_by_name(tmp_path):
    """Two learners on one store asked the teacher the same queries again, then
    failed on UNIQUE: the second is refused at its start, until the first ends
    (even by kill -9)."""
    import latent_geodesics
    path = str(tmp_path / "s.db")
    DemoStore(path).seed(np.ones((4, 2)), NAMES)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
        latent_geodesics.__file__)) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    first = subprocess.Popen([sys.executable, "-c", HOLD_THE_STORE, path], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=r"s\.db is in use by another active learner "
                                             r"\(process %d\).*its own store" % first.pid):
            DemoStore(path).claim()
    finally:
        first.kill()
        first.wait()
    store = DemoStore(path)
    store.claim()                                    # the killed one's claim is gone
    with pytest.raises(StoreError, match="in use by another active learner"):
        DemoStore(path).claim()                      # in one process too
    store.close()
    DemoStore(path).claim()                          # close() gives it back


def test_a_symlinked_learner_lock_is_refused(tmp_path):
    path = str(tmp_path / "s.db")
    target = tmp_path / "victim"
    target.write_text("keep")
    os.symlink(str(target), path + ".lock")
    with pytest.raises(StoreError, match="symbolic link"):
        DemoStore(path).claim()
    assert target.read_text() == "keep"


def test_a_store_locked_longer_than_the_busy_timeout_waits_and_goes_on(tmp_path):
    """A store locked by another process for longer than SQLite's busy timeout (30 s
    by default) stopped the loop for good; now the write waits, says so, and goes on."""
    import threading
    path = str(tmp_path / "s.db")
    logged = []
    store = DemoStore(path, log=logged.append, busy_timeout=0.2)
    store.seed(np.ones((4, 2)), NAMES)
    store.start_round(1, "/m0", "combined", queries())
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")                 # another process's write transaction
    release = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    store.add_demonstration(1, 0, "/m0", np.ones((2, 2)))
    assert time.monotonic() - started >= 0.9         # it waited for the lock ...
    assert store.query_counts(1)["answered"] == 1    # ... and then wrote
    assert logged and all("s.db is locked by another process" in m for m in logged)
    release.join()
    other.close()
