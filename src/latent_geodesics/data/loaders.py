"""Loading joint-configuration data sets: CSV, NPY, NPZ, ROS 1 and ROS 2 bags.

Every loader returns (data (N, D) float64, joint_names list of D strings).
"""
import csv
import hashlib
import itertools
import os

import numpy as np

from latent_geodesics.errors import DataError


def default_names(d):
    return ["joint_%d" % i for i in range(d)]


MAX_COLUMNS = 10_000      # joints a data set may have (each is an input of the IWAE)
CSV_BLOCK_ROWS = 1 << 16  # CSV rows held as text at once


def load_csv(path):
    """A CSV of numbers, with or without a header of joint names. Parsed a block of
    rows at a time: only one block is ever held as text (a 10M-row file held as
    Python strings took 9.8 GB)."""
    with open(path, newline="", encoding="utf-8-sig") as f:   # a byte-order mark is no name
        reader = csv.reader(f)
        rows = ((reader.line_num, r) for r in reader if r and any(c.strip() for c in r))
        first = next(rows, None)
        if first is None:
            raise DataError("%s is empty" % path)
        width = check_width(path, len(first[1]))
        names = _header(path, *first)
        if names is None:
            rows = itertools.chain([first], rows)
        blocks = []
        while True:
            block = list(itertools.islice(rows, CSV_BLOCK_ROWS))
            if not block:
                break
            blocks.append(_parse_block(path, block, width))
    data = np.concatenate(blocks) if blocks else np.empty((0, width))
    return data, names or default_names(width)


def check_width(path, width):
    if width > MAX_COLUMNS:
        raise DataError("%s has %d columns, more than the %d joints a model can take: select "
                        "the joints to train on (--joints)" % (path, width, MAX_COLUMNS))
    return width


def _header(path, line, cells):
    """The joint names of a CSV's first row, or None when it is a row of numbers.
    numpy.savetxt writes its header behind a comment mark ('# a,b,c'): the mark is
    no part of the first name. A row mixing numbers and names is refused: it is a
    data row with a typo more often than a header, and taking it as names would
    drop the row and name the joints by its numbers."""
    if _all_numbers(cells):
        return None
    _refuse_other_delimiters(path, line, cells)
    names = [c.strip() for c in cells]
    names[0] = names[0].lstrip("#").strip()
    numbers = [i for i, c in enumerate(cells, 1) if _all_numbers([c])]
    if numbers:
        column = next(i for i, c in enumerate(cells, 1) if not _all_numbers([c]))
        raise DataError("%s: line %d, column %d is not a number, yet column %d is: a header "
                        "names every column, a data row holds numbers only"
                        % (path, line, column, numbers[0]))
    return names


# Separators a CSV is sometimes written with instead of commas (spreadsheets in
# locales with a decimal comma write ';'; numpy.savetxt's default is a space).
OTHER_DELIMITERS = ((";", "';'"), ("\t", "tabs"), ("|", "'|'"), (None, "spaces"))


def _refuse_other_delimiters(path, line, cells):
    """DataError with a hint when a cell holds numbers separated by something else
    than a comma (its text is never echoed)."""
    for cell in cells:
        for separator, name in OTHER_DELIMITERS:
            parts = [p for p in cell.split(separator) if p.strip()]
            if len(parts) > 1 and _all_numbers([p.replace(",", ".") for p in parts]):
                raise DataError("%s: line %d holds numbers separated by %s, not commas: "
                                "write the file comma-separated, with '.' as the decimal "
                                "point (numpy.savetxt(..., delimiter=','))"
                                % (path, line, name))


def _all_numbers(cells):
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def _parse_block(path, block, width):
    """(line, cells) rows -> (n, width) float64; DataError naming the first line that
    is ragged or holds something that is not a real number (never its text)."""
    for line, cells in block:
        if len(cells) != width:
            _refuse_other_delimiters(path, line, cells)
            raise DataError("%s: line %d has %d values, expected %d (ragged CSV)"
                            % (path, line, len(cells), width))
    try:
        return np.array([cells for _, cells in block], dtype=np.float64).reshape(-1, width)
    except ValueError:
        pass
    for line, cells in block:
        for column, cell in enumerate(cells, 1):
            if not _all_numbers([cell]):
                _refuse_other_delimiters(path, line, cells)
                raise DataError("%s: line %d, column %d is %s" % (
                    path, line, column, "a complex number: joint positions are real"
                    if _is_complex(cell) else "not a number"))
    raise DataError("%s could not be read as numbers" % path)


def _is_complex(cell):
    try:
        complex(cell.strip())
    except ValueError:
        return False
    return True


def real_table(path, array):
    """A loaded array as (N, D) float64, refused unless it is a table of real numbers
    (a complex one would silently lose its imaginary part)."""
    if array.dtype.kind == "c":
        raise DataError("%s holds complex numbers: joint positions are real; save the part "
                        "that is meant (numpy.real)" % path)
    if array.dtype.kind not in "biuf":
        raise DataError("%s holds %s values, not numbers" % (path, array.dtype.name))
    if array.ndim != 2:
        raise DataError("%s holds an array of shape %s: expected a table, one row per pose "
                        "and one column per joint" % (path, array.shape))
    check_width(path, array.shape[1])
    if isinstance(array, np.memmap):   # read into memory, not left mapped read-only
        return np.array(array, dtype=np.float64)
    return np.asarray(array, dtype=np.float64)


def load_npy(path):
    # Memory-mapped: type and shape are checked before anything is read.
    data = real_table(path, np.load(path, mmap_mode="r", allow_pickle=False))
    return data, default_names(data.shape[1])


def load_npz(path):
    with np.load(path, allow_pickle=False) as f:
        key = "data" if "data" in f.files else f.files[0] if f.files else None
        if key is None:
            raise DataError("%s holds no arrays" % path)
        data = real_table(path, f[key])
        names = [str(n) for n in f["joint_names"]] if "joint_names" in f.files else None
    return data, names or default_names(data.shape[1])


def load_rosbag(path, topic="/joint_states", joints=None, report=None, **recording):
    """sensor_msgs/JointState messages on `topic`, as a robot records them: merged by
    joint name across publishers, unwrapped, downsampled, still stretches dropped
    (recordings.from_samples; `recording`: its rate and still). report: a dict that
    receives what was done."""
    from latent_geodesics.data.recordings import bag2_samples, bag_samples, from_samples
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


MAX_ABS_VALUE = 1e6   # joint positions (rad or m) beyond this are not joint positions


def validate(data, joint_names=None, batch_size=1):
    """Reject data that training would choke on, before training starts; returns it as
    an (N, D) float64 array. joint_names None: joint_0, joint_1, ..."""
    data = real_table("the data", np.asarray(data))
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise DataError("data must be a non-empty N x D table, got shape %s" % (data.shape,))
    joint_names = default_names(data.shape[1]) if joint_names is None else joint_names
    if len(joint_names) != data.shape[1]:
        raise DataError("%d joint names for %d columns" % (len(joint_names), data.shape[1]))
    if len(set(joint_names)) != len(joint_names):
        raise DataError("joint names are not unique: %s" % joint_names)
    bad = ~np.isfinite(data)
    if bad.any():
        raise DataError("%d rows hold NaN or inf (first: %s)" % (bad.any(1).sum(), first(bad)))
    huge = np.abs(data) > MAX_ABS_VALUE
    if huge.any():
        raise DataError("%d rows hold values beyond +-%g (first: %s), which are not joint "
                        "positions in rad or m: convert the data to those units"
                        % (huge.any(1).sum(), MAX_ABS_VALUE, first(huge)))
    flat = np.flatnonzero(data.std(axis=0) < 1e-9)
    if flat.size:
        raise DataError("columns with zero variance (a joint that never moves; drop it): %s"
                        % ", ".join("%s (column %d)" % (joint_names[i], i + 1) for i in flat))
    if data.shape[0] < batch_size:
        raise DataError("%d rows, fewer than the batch size %d" % (data.shape[0], batch_size))
    return data


def first(mask):
    """Where the first True of an (N, D) mask is, counted from 1 as a person counts."""
    row, column = np.argwhere(mask)[0]
    return "data row %d, column %d; rows counted from 1, a header not counted" % (
        row + 1, column + 1)


def data_hash(data):
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float64).tobytes()).hexdigest()
