"""Loading joint-configuration data sets: CSV, NPY, NPZ, ROS 1 and ROS 2 bags.

Every loader returns (data (N, D) float64, joint_names list of D strings).
"""
import csv
import hashlib
import os

import numpy as np

from ..errors import DataError


def default_names(d):
    return ["joint_%d" % i for i in range(d)]


def load_csv(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError("%s is empty" % path)
    names = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        names, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(names) if names else len(rows[0]) if rows else 0
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError("%s: row %d has %d values, expected %d (ragged CSV)"
                            % (path, i + 1 + bool(names), len(r), width))
    try:
        data = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise DataError("%s: %s" % (path, e)) from None
    return data.reshape(len(rows), width), names or default_names(width)


def load_npy(path):
    data = np.load(path, allow_pickle=False)
    return np.asarray(data, dtype=np.float64), default_names(data.shape[-1] if data.ndim else 0)


def load_npz(path):
    with np.load(path, allow_pickle=False) as f:
        key = "data" if "data" in f.files else f.files[0] if f.files else None
        if key is None:
            raise DataError("%s holds no arrays" % path)
        data = np.asarray(f[key], dtype=np.float64)
        names = [str(n) for n in f["joint_names"]] if "joint_names" in f.files else None
    return data, names or default_names(data.shape[-1] if data.ndim else 0)


def load_rosbag(path, topic="/joint_states", joints=None, report=None, **recording):
    """sensor_msgs/JointState messages on `topic`, as a robot records them: merged by
    joint name across publishers, unwrapped, downsampled, still stretches dropped
    (recordings.from_samples; `recording`: its rate and still). report: a dict that
    receives what was done."""
    from .recordings import bag2_samples, bag_samples, from_samples
    samples = bag2_samples if is_ros2_bag(path) else bag_samples
    data, names, info = from_samples(samples(path, topic), joints, **recording)
    if report is not None:
        report.update(info)
    return data, names


ROS2_BAG_FILES = (".db3", ".mcap")


def is_ros2_bag(path):
    """A ROS 2 bag: its directory (with metadata.yaml) or its .db3/.mcap file."""
    return (os.path.isdir(path) and os.path.isfile(os.path.join(path, "metadata.yaml"))) \
        or os.path.splitext(path)[1].lower() in ROS2_BAG_FILES


def select_joints(data, names, joints):
    """The columns of the named joints, in that order."""
    missing = [j for j in joints if j not in names]
    if missing:
        raise DataError("the data has no joints %s (it has %s)" % (missing, names))
    return data[:, [names.index(j) for j in joints]], list(joints)


def load_data(path, topic="/joint_states", joints=None, report=None, **recording):
    """Load a data file by its extension; DataError for anything unusable.

    joints: the joints to keep, in that order (None: all); report and recording:
    for bags, see load_rosbag."""
    if not (os.path.isfile(path) or is_ros2_bag(path)):
        raise DataError("data file %s does not exist" % path)
    ext = ".bag" if is_ros2_bag(path) else os.path.splitext(path)[1].lower()
    loaders = {".csv": load_csv, ".txt": load_csv, ".npy": load_npy, ".npz": load_npz,
               ".bag": lambda p: load_rosbag(p, topic, joints, report, **recording)}
    if ext not in loaders:
        raise DataError("%s: unknown data format '%s' (csv, npy, npz, a ROS 1 .bag, a ROS 2 "
                        "bag's directory, .db3 or .mcap)" % (path, ext))
    try:
        data, names = loaders[ext](path)
    except DataError:
        raise
    except Exception as e:  # a corrupt file: say which and why
        raise DataError("%s could not be read: %s" % (path, e)) from None
    if joints and ext != ".bag":
        data, names = select_joints(np.asarray(data, dtype=np.float64).reshape(len(data), -1),
                                    names, joints)
    return data, names


def validate(data, joint_names, batch_size=1):
    """Reject data that training would choke on, before training starts."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise DataError("data must be a non-empty N x D table, got shape %s" % (data.shape,))
    if len(joint_names) != data.shape[1]:
        raise DataError("%d joint names for %d columns" % (len(joint_names), data.shape[1]))
    if len(set(joint_names)) != len(joint_names):
        raise DataError("joint names are not unique: %s" % joint_names)
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
    if bad.size:
        raise DataError("%d rows hold NaN or inf (first: row %d)" % (bad.size, bad[0]))
    flat = np.flatnonzero(data.std(axis=0) < 1e-9)
    if flat.size:
        raise DataError("columns with zero variance (a joint that never moves; drop it): %s"
                        % ", ".join("%s (column %d)" % (joint_names[i], i + 1) for i in flat))
    if data.shape[0] < batch_size:
        raise DataError("%d rows, fewer than the batch size %d" % (data.shape[0], batch_size))
    return data


def data_hash(data):
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float64).tobytes()).hexdigest()
