"""Real robot recordings into training data: JointState streams as drivers publish them.

A robot's /joint_states comes at 500-1000 Hz, often from several publishers (arm,
wrist, gripper), each naming its own joints, and stands still for long stretches;
continuous joints wrap at +-pi. `from_samples` turns such a stream into training
rows: each joint's series unwrapped where it wraps, merged by name onto a uniform
time grid (each joint's latest value, a sample-and-hold), downsampled to `rate`
Hz, and stripped of rows that hardly move from the last row kept. It says what it
did, for the training report.
"""
import numpy as np

from latent_geodesics.data.loaders import DataError, check_width

RATE_HZ = 50.0        # rows per second of recording kept
STILL_RAD = 1e-3      # a row moving less than this (every joint) from the last kept is dropped


def from_samples(samples, joints=None, rate=RATE_HZ, still=STILL_RAD):
    """samples: iterable of (time s, joint names, positions) in any order.

    joints: the joints to keep (None: all that appear). Returns (data, names, info).
    """
    series = _per_joint(samples)
    names = list(joints) if joints else list(series)
    check_width("the recording", len(names))
    missing = [n for n in names if n not in series]
    if missing:
        raise DataError("the recording has no joints %s (it has %s)" % (missing, list(series)))
    unwrapped = [n for n in names if _wraps(series[n][1])]
    for n in unwrapped:
        series[n] = (series[n][0], np.unwrap(series[n][1]))
    start = max(series[n][0][0] for n in names)
    end = min(series[n][0][-1] for n in names)
    if not end > start:
        raise DataError("joints %s are never recorded at the same time" % names)
    grid, stretches = _grid(series, names, start, end, rate)
    data = np.stack([_hold(series[n], grid) for n in names], 1)
    kept = _moving(data, still)
    count = sum(len(series[n][0]) for n in names)
    seconds = float(sum(b - a for a, b in stretches))
    info = {"samples": int(count), "seconds": seconds,
            "input_hz": float(max(len(series[n][0]) for n in names) / max(seconds, 1e-9)),
            "rate_hz": float(rate), "resampled_rows": int(len(grid)), "rows": int(kept.sum()),
            "dropped_still": int(len(grid) - kept.sum()), "still_rad": float(still),
            "joints": names, "unwrapped": unwrapped, "gaps_skipped": len(stretches) - 1,
            "gap_seconds": float(end - start) - seconds}
    return data[kept], names, info


GAP_S = 10.0              # no message for this long (and 10 rows): the recording paused
MAX_GRID_ROWS = 20_000_000  # rows the resampling may make (8 bytes x joints each)


def _grid(series, names, start, end, rate):
    """The resampling times: every 1/rate s over each stretch of the recording, the
    gaps between stretches skipped (a bag recorded on two days would otherwise hold
    the last pose for every 1/rate s between them: 7.45 GiB for 10 messages over 231
    days). Returns (grid, [(stretch start, stretch end)])."""
    times = np.unique(np.concatenate([series[n][0] for n in names]))
    times = times[(times >= start) & (times <= end)]
    gap = max(GAP_S, 10.0 / rate)
    cut = np.flatnonzero(np.diff(times) > gap)
    stretches = list(zip(np.r_[times[0], times[cut + 1]], np.r_[times[cut], times[-1]]))
    rows = sum(int((b - a) * rate) + 1 for a, b in stretches)
    if rows > MAX_GRID_ROWS:
        raise DataError("resampling %.0f s of recording at %g Hz makes %d rows, more than "
                        "%d: lower the rate (--rate)" % (sum(b - a for a, b in stretches),
                                                         rate, rows, MAX_GRID_ROWS))
    return np.concatenate([np.arange(a, b + 0.5 / rate, 1.0 / rate) for a, b in stretches]), \
        stretches


def _per_joint(samples):
    """{joint: (times, positions)}, time-sorted, in the order joints first appear."""
    raw = {}
    for t, names, positions in samples:
        if len(names) != len(positions):
            continue   # a malformed message (driver bug): its values cannot be matched
        for n, p in zip(names, positions):
            raw.setdefault(n, []).append((float(t), float(p)))
    if not raw:
        raise DataError("the recording holds no joint positions")
    out = {}
    for n, rows in raw.items():
        rows = np.array(rows)
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        finite = np.isfinite(rows).all(1)
        out[n] = (rows[finite, 0], rows[finite, 1])
    return {n: s for n, s in out.items() if len(s[0])}


WRAP_BAND = 0.5   # rad from +-pi within which both samples of a wrap lie


def _wraps(values):
    """A joint wraps at +-pi when it jumps from near one end to near the other (a
    revolute joint's fast move between sparse samples does not)."""
    a, b = values[:-1], values[1:]
    return bool(np.any((np.sign(a) != np.sign(b)) & (np.abs(a) > np.pi - WRAP_BAND)
                       & (np.abs(b) > np.pi - WRAP_BAND)))


def _hold(series, grid):
    """Each grid time's latest recorded value (sample-and-hold)."""
    times, values = series
    return values[np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(times) - 1)]


def _moving(data, still):
    """Rows kept: the first, and each that moved more than `still` from the last kept."""
    keep = np.zeros(len(data), bool)
    last = None
    for i, row in enumerate(data):
        if last is None or np.abs(row - last).max() > still:
            keep[i], last = True, row
    return keep


def bag_samples(path, topic):
    """(time, names, positions) of the JointState messages on topic; header stamps,
    or the bag's receive time for messages stamped 0."""
    import rosbag  # only needed here; the core imports without ROS
    with rosbag.Bag(path) as bag:
        topics = bag.get_type_and_topic_info().topics
        if topic not in topics:
            raise DataError("%s has no topic %s (topics: %s)"
                            % (path, topic, ", ".join(sorted(topics)) or "none"))
        for _, msg, received in bag.read_messages(topics=[topic]):
            stamp = msg.header.stamp.to_sec() or received.to_sec()
            yield stamp, list(msg.name), list(msg.position)


def bag2_samples(path, topic):
    """The same from a ROS 2 bag (sqlite3 or MCAP: its directory or its file) of
    sensor_msgs/msg/JointState, read with rosbags (no ROS 2 installation needed)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with Reader(path) as bag:
        connections = [c for c in bag.connections if c.topic == topic]
        if not connections:
            raise DataError("%s has no topic %s (topics: %s)" % (
                path, topic, ", ".join(sorted({c.topic for c in bag.connections})) or "none"))
        for connection, received_ns, raw in bag.messages(connections=connections):
            msg = typestore.deserialize_cdr(raw, connection.msgtype)
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            yield stamp or 1e-9 * received_ns, list(msg.name), list(msg.position)


def to_ros2_bag(ros1_bag, ros2_dir, storage="sqlite3"):
    """A ROS 1 bag rewritten as a ROS 2 bag (sqlite3 or mcap) with rosbags' converter:
    the same topics and messages, ROS 2 type names (trajectory_msgs/msg/...)."""
    from pathlib import Path

    from rosbags.convert import convert
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    convert([Path(ros1_bag)], Path(ros2_dir), storage, 8, None, "file", store, store,
            [], [], [], [])
