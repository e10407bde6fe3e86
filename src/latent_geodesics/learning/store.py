"""Crash-safe storage of demonstrations: SQLite in WAL mode, synchronous=FULL.

A demonstration is committed (with its query, round and the model that asked
for it) before anyone is told it was received, and in the same transaction its
query is marked answered, so a process killed at any moment and started again
neither loses an acknowledged demonstration nor asks for it twice.

One active learner writes a store at a time (claim); a write that finds the
store locked by another process for longer than busy_timeout waits and tries
again, with a growing pause, rather than stopping the loop.
"""
import csv
import errno
import fcntl
import json
import os
import sqlite3
import threading
import time

import numpy as np

from latent_geodesics.errors import StoreError
from latent_geodesics.files import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, model_dir TEXT NOT NULL, selector TEXT NOT NULL,
    status TEXT NOT NULL, trained_model_dir TEXT, metrics TEXT);
CREATE TABLE IF NOT EXISTS queries (
    round INTEGER NOT NULL, idx INTEGER NOT NULL, latent TEXT NOT NULL,
    positions TEXT NOT NULL, score REAL, status TEXT NOT NULL, message TEXT,
    PRIMARY KEY (round, idx));
CREATE TABLE IF NOT EXISTS demonstrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, query_idx INTEGER NOT NULL,
    model_dir TEXT NOT NULL, data BLOB NOT NULL, rows INTEGER NOT NULL, created REAL NOT NULL,
    UNIQUE (round, query_idx));
"""


def is_locked(error):
    """An sqlite3 error that says another connection holds the lock (SQLITE_BUSY/LOCKED)."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


class DemoStore:
    def __init__(self, path, log=print, busy_timeout=30.0, max_pause=60.0):
        """log(message) says when the store is locked; busy_timeout (s) is how long
        SQLite waits for a lock before each new try, max_pause (s) the longest pause
        between tries."""
        self.path, self.log = path, log
        self.busy_timeout, self.max_pause = busy_timeout, max_pause
        self.lock = threading.Lock()   # one writer at a time within the process
        self.claims = []               # lock files held for an active learner
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                      timeout=busy_timeout)
            problem = self.retrying(self._open)
        except sqlite3.DatabaseError as e:
            problem = str(e)
        if problem != "ok":
            raise StoreError("demonstration store %s is damaged (%s): move it aside and "
                             "recover it (sqlite3 %s .recover), or start with a new work_dir"
                             % (path, problem, path))

    def _open(self):
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        return self.db.execute("PRAGMA quick_check").fetchone()[0]

    def retrying(self, action):
        """action(), tried again after a pause (1 s, doubling up to max_pause) for as
        long as another process holds the store's lock: a lock held for minutes (a
        backup, an sqlite3 shell in a transaction) delays the loop, never ends it."""
        pause = 1.0
        while True:
            try:
                return action()
            except sqlite3.OperationalError as e:
                if not is_locked(e):
                    raise
            self.log("demonstration store %s is locked by another process (for over %g s): "
                     "trying again in %g s; end that program's transaction if this goes on"
                     % (self.path, self.busy_timeout, pause))
            time.sleep(pause)
            pause = min(2 * pause, self.max_pause)

    def claim(self):
        """Hold the store for one active learner until close() or the process ends
        (kill -9 included): an exclusive flock on <store>.lock. A second learner on
        the same store would ask the teacher the same queries again and then fail
        on their UNIQUE constraint: it is refused here, by name."""
        lock_path = self.path + ".lock"
        try:   # never through a symbolic link planted in its place
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644)
        except OSError as e:
            why = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror
            raise StoreError("cannot create the learner lock %s of store %s (%s): remove it "
                             "or choose another store" % (lock_path, self.path, why)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 20, 0).strip()
            os.close(fd)
            raise StoreError("demonstration store %s is in use by another active learner%s: "
                             "stop that learner, or give this one its own store (parameter "
                             "store, or another work_dir)" % (
                                 self.path, " (process %s)" % holder.decode()
                                 if holder.isdigit() else "")) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self.claims.append(fd)

    def close(self):
        self.db.close()
        while self.claims:
            os.close(self.claims.pop())

    def transaction(self):
        return _Transaction(self)

    # --- data set -----------------------------------------------------------
    def joint_names(self):
        row = self.db.execute("SELECT value FROM meta WHERE key='joint_names'").fetchone()
        return json.loads(row[0]) if row else None

    def seed(self, data, joint_names):
        """Store the initial training data once (round 0, query -1)."""
        data = np.asarray(data, dtype=np.float64)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM demonstrations WHERE round=0").fetchone():
                return False
            db.execute("INSERT INTO meta VALUES ('joint_names', ?)", (json.dumps(joint_names),))
            db.execute("INSERT INTO demonstrations (round, query_idx, model_dir, data, rows, "
                       "created) VALUES (0, -1, '', ?, ?, ?)",
                       (data.tobytes(), len(data), time.time()))
        return True

    def data(self, up_to_round=None):
        """All stored configurations (N, D) in joint_names order."""
        names = self.joint_names()
        if names is None:
            raise StoreError("the store holds no data yet")
        query = "SELECT data FROM demonstrations"
        args = ()
        if up_to_round is not None:
            query, args = query + " WHERE round <= ?", (up_to_round,)
        blobs = [np.frombuffer(b, dtype=np.float64) for (b,) in self.db.execute(
            query + " ORDER BY id", args)]
        return np.concatenate(blobs).reshape(-1, len(names)), names

    def export(self, path):
        """CSV (with a header of joint names) or NPZ (data, joint_names) for train_iwae."""
        data, names = self.data()
        if path.endswith(".npz"):
            atomic_write(path, lambda f: np.savez(f, data=data, joint_names=np.array(names)))
        else:
            atomic_write(path, lambda f: _write_csv(f, data, names), "w")
        return len(data)

    # --- rounds and queries ----------------------------------------------------
    def current_round(self):
        """(round, status) of the newest round, or (0, 'done') before the first."""
        row = self.db.execute("SELECT round, status FROM rounds ORDER BY round DESC LIMIT 1"
                              ).fetchone()
        return (row[0], row[1]) if row else (0, "done")

    def round_info(self, rnd):
        row = self.db.execute("SELECT model_dir, selector, status, trained_model_dir, metrics "
                              "FROM rounds WHERE round=?", (rnd,)).fetchone()
        if row is None:
            return None
        return {"model_dir": row[0], "selector": row[1], "status": row[2],
                "trained_model_dir": row[3], "metrics": json.loads(row[4] or "null")}

    def start_round(self, rnd, model_dir, selector, queries):
        """Record a round and its queries in one transaction."""
        with self.transaction() as db:
            db.execute("INSERT INTO rounds (round, model_dir, selector, status) "
                       "VALUES (?, ?, ?, 'collecting')", (rnd, model_dir, selector))
            db.executemany("INSERT INTO queries VALUES (?, ?, ?, ?, ?, 'pending', NULL)",
                           [(rnd, i, json.dumps(list(map(float, z))),
                             json.dumps(list(map(float, q))), float(s))
                            for i, (z, q, s) in enumerate(zip(queries.latent, queries.positions,
                                                              queries.scores))])

    def pending(self, rnd):
        return [(idx, np.array(json.loads(q))) for idx, q in self.db.execute(
            "SELECT idx, positions FROM queries WHERE round=? AND status='pending' ORDER BY idx",
            (rnd,))]

    def queries(self, rnd):
        """A round's queries in order: (positions (n, Nx), statuses [n])."""
        rows = self.db.execute("SELECT positions, status FROM queries WHERE round=? "
                               "ORDER BY idx", (rnd,)).fetchall()
        positions = np.array([json.loads(q) for q, _ in rows], dtype=np.float64)
        return (positions.reshape(len(rows), len(self.joint_names())),
                [status for _, status in rows])

    def query_latents(self, rnd):
        """A round's queries in order: (latent points (n, Nz), refused flags (n,))."""
        rows = self.db.execute("SELECT latent, status FROM queries WHERE round=? ORDER BY idx",
                               (rnd,)).fetchall()
        return (np.array([json.loads(z) for z, _ in rows]),
                np.array([status == "refused" for _, status in rows]))

    def add_demonstration(self, rnd, idx, model_dir, data):
        """Commit a demonstration and mark its query answered; returns its id."""
        data = np.asarray(data, dtype=np.float64)
        names = self.joint_names()
        if data.ndim != 2 or data.shape[1] != len(names) or not np.isfinite(data).all():
            raise StoreError("demonstration must be finite (T, %d), got %s"
                             % (len(names), data.shape))
        with self.transaction() as db:
            cur = db.execute("INSERT INTO demonstrations (round, query_idx, model_dir, data, "
                             "rows, created) VALUES (?, ?, ?, ?, ?, ?)",
                             (rnd, idx, model_dir, data.tobytes(), len(data), time.time()))
            db.execute("UPDATE queries SET status='answered' WHERE round=? AND idx=?",
                       (rnd, idx))
            return cur.lastrowid

    def refuse(self, rnd, idx, message):
        with self.transaction() as db:
            db.execute("UPDATE queries SET status='refused', message=? WHERE round=? AND idx=?",
                       (message, rnd, idx))

    def set_status(self, rnd, status, trained_model_dir=None, metrics=None):
        with self.transaction() as db:
            db.execute("UPDATE rounds SET status=?, trained_model_dir=COALESCE(?, "
                       "trained_model_dir), metrics=COALESCE(?, metrics) WHERE round=?",
                       (status, trained_model_dir, None if metrics is None
                        else json.dumps(metrics), rnd))

    def query_counts(self, rnd):
        """{'answered': n, 'refused': n, 'pending': n} for a round's queries."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM queries WHERE round=? "
                                    "GROUP BY status", (rnd,)).fetchall())

    def demonstration_ids(self):
        return [r[0] for r in self.db.execute("SELECT id FROM demonstrations WHERE round > 0")]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), serialised within the process."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.store.lock.acquire()
        try:
            self.store.retrying(lambda: self.store.db.execute("BEGIN IMMEDIATE"))
        except BaseException:
            self.store.lock.release()
            raise
        return self.store.db

    def __exit__(self, exc_type, exc, tb):
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()
        return False


def _write_csv(f, data, names, rows=65536):
    """A header of joint names, then the rows (a block at a time: as Python floats,
    a whole store would take several times its own size)."""
    w = csv.writer(f)
    w.writerow(names)
    for start in range(0, len(data), rows):
        w.writerows(data[start:start + rows].tolist())
