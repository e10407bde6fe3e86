"""Data: loaders round-trip, bad data is refused, the simulations are sound."""
import numpy as np
import pytest

from latent_geodesics.data import DataError, laikago_dataset, load_data, pendulum_dataset, validate
from latent_geodesics.sim.arm import (
    JOINT_NAMES,
    Q_HOME,
    Q_MAX,
    Q_MIN,
    SKILL_AZIMUTHS,
    SKILL_GAP,
    ArmSimulator,
    azimuth,
    fingertip,
    inverse_kinematics,
    two_skills,
)
from latent_geodesics.sim.pendulum import render
from latent_geodesics.sim.skills import CYCLE, curved_pairs, curved_skills, panda_skills

DATA = np.random.default_rng(0).normal(size=(30, 3))
NAMES = ["a", "b", "c"]


def test_csv_with_header(tmp_path):
    p = tmp_path / "d.csv"
    np.savetxt(p, DATA, delimiter=",", header=",".join(NAMES), comments="")
    data, names = load_data(str(p))
    assert names == NAMES and np.allclose(data, DATA)


def test_csv_without_header(tmp_path):
    p = tmp_path / "d.csv"
    np.savetxt(p, DATA, delimiter=",")
    data, names = load_data(str(p))
    assert names == ["joint_0", "joint_1", "joint_2"] and np.allclose(data, DATA)


def test_npy_and_npz(tmp_path):
    np.save(tmp_path / "d.npy", DATA)
    np.savez(tmp_path / "d.npz", data=DATA, joint_names=np.array(NAMES))
    assert np.array_equal(load_data(str(tmp_path / "d.npy"))[0], DATA)
    assert load_data(str(tmp_path / "d.npy"))[0].flags.writeable   # read, not left mapped
    data, names = load_data(str(tmp_path / "d.npz"))
    assert names == NAMES and np.array_equal(data, DATA)


def test_rosbag_joint_states(tmp_path):
    rosbag = pytest.importorskip("rosbag")
    import rospy
    from sensor_msgs.msg import JointState
    path = str(tmp_path / "d.bag")
    with rosbag.Bag(path, "w") as bag:
        for i, row in enumerate(DATA):
            # Joint order differs between messages: the loader matches by name.
            order = [2, 0, 1] if i % 2 else [0, 1, 2]
            msg = JointState(name=[NAMES[j] for j in order], position=[row[j] for j in order])
            bag.write("/joint_states", msg, rospy.Time(1 + i))
    data, names = load_data(path)
    assert names == NAMES and np.allclose(data, DATA)
    with pytest.raises(DataError, match="no topic /arm"):
        load_data(path, topic="/arm")


def test_empty_rosbag(tmp_path):
    rosbag = pytest.importorskip("rosbag")
    path = str(tmp_path / "e.bag")
    rosbag.Bag(path, "w").close()
    with pytest.raises(DataError, match="no topic"):
        load_data(path)


def test_ragged_csv(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("1,2,3\n4,5\n")
    with pytest.raises(DataError, match="ragged"):
        load_data(str(p))


@pytest.mark.parametrize("data,fragment", [
    (np.array([[1.0, np.nan, 2.0]] * 10), "NaN"),
    (np.c_[np.arange(10.0), np.ones(10), np.arange(10.0)], "zero variance"),
    (DATA[:5], "fewer than the batch"),
    (np.zeros((0, 3)), "non-empty"),
])
def test_bad_data_is_refused(data, fragment):
    with pytest.raises(DataError, match=fragment):
        validate(data, NAMES, batch_size=8)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(str(tmp_path / "none.csv"))
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match="unknown data format"):
        load_data(str(tmp_path / "x.parquet"))


def test_panda_forward_kinematics_at_home():
    # Franka's documented fingertip position in the 'ready' pose (hand length 0.1034 m).
    tip = fingertip(Q_HOME[None])[0].numpy()
    assert np.allclose(tip, [0.3069, 0.0, 0.4869], atol=1e-3)


def test_inverse_kinematics_reaches_table_targets():
    targets = np.array([[0.5, 0.3, 0.06], [0.4, -0.3, 0.06]])
    q, err = inverse_kinematics(targets)
    assert (err < 0.01).all()
    assert ((q >= Q_MIN) & (q <= Q_MAX)).all()


def test_arm_demonstrations_are_smooth_valid_and_leave_the_hole(arm):
    sim = ArmSimulator()
    assert arm.data.shape == (120 * 25, 7) and arm.joint_names == JOINT_NAMES
    for demo in arm.demos:
        assert sim.is_valid(demo)
        assert np.abs(np.diff(demo, axis=0)).max() < 0.3   # no jumps between poses
    ends = fingertip(np.stack([d[-1] for d in arm.demos])).numpy()
    lo, hi = sim.workspace.hole_y
    assert not ((ends[:, 1] > lo) & (ends[:, 1] < hi)).any()


def test_two_skills_never_enter_the_sector_between_them():
    skills = two_skills(n_demos=30, seed=0)
    sim = ArmSimulator()
    assert skills.data.shape == (30 * 25, 7) and len(skills.demos) == 30
    assert all(sim.is_valid(demo) for demo in skills.demos)
    ends = azimuth(np.stack([d[-1] for d in skills.demos]))
    for lo, hi in SKILL_AZIMUTHS:   # both skills, each reaching its own sector
        assert ((ends >= lo - 0.01) & (ends <= hi + 0.01)).sum() >= 10
    every_pose = azimuth(skills.data)
    assert not ((every_pose > SKILL_GAP[0]) & (every_pose < SKILL_GAP[1])).any()


def test_panda_skills_stay_within_the_panda_limits_and_stay_curved():
    panda, free = panda_skills(), curved_skills()
    assert panda.joint_names == JOINT_NAMES
    inside = (panda.data >= Q_MIN) & (panda.data <= Q_MAX)
    assert inside.all(), "%d poses outside the limits" % (~inside.all(axis=1)).sum()
    # the skills as drawn break joints 4 and 6's limits; placed for the Panda, none does
    assert not ((free.data >= Q_MIN) & (free.data <= Q_MAX)).all()
    loops = np.stack([panda.motion(s, 0.0, CYCLE, 400) for s in range(len(panda.shapes))])
    assert (loops >= Q_MIN + 0.05).all() and (loops <= Q_MAX - 0.05).all()
    np.testing.assert_array_equal(panda.phases, free.phases)
    np.testing.assert_array_equal(panda.skills, free.skills)
    a, b, pa, pb = curved_pairs(panda, 1)[0]
    motion = panda.motion(panda.skills[a], pa, pb, 400)
    s = np.linspace(0, 1, 400)[:, None]
    line = motion[0] + s * (motion[-1] - motion[0])
    assert np.abs(motion - line).max() > 0.3   # a curved demonstration, not its chord


def test_demonstration_through_a_query_or_refused():
    sim = ArmSimulator()
    via = Q_HOME + np.array([0.3, 0.2, 0, 0.2, 0, 0, 0])
    demo = sim.demonstration(Q_HOME, Q_HOME + np.array([0.6, 0, 0, 0, 0, 0, 0]), via=via)
    assert demo is not None and np.linalg.norm(demo - via, axis=1).min() < 0.1
    into_table = Q_HOME + np.array([0, 1.5, 0, 0.5, 0, 0, 0])
    assert sim.workspace.in_collision(into_table)[0]
    assert sim.demonstration(Q_HOME, Q_HOME, via=into_table) is None


def test_pendulum_states_and_images():
    states, names = pendulum_dataset(hole=(0.8, 1.6))
    assert names == ["angle", "angular_velocity"] and states.shape[1] == 2
    assert not ((np.abs(states[:, 0]) > 0.8) & (np.abs(states[:, 0]) < 1.6)).any()
    images = render(states[:4])
    assert images.shape == (4, 256) and images.max() <= 1.0
    # The rod points down at angle 0: the bottom half is brighter than the top.
    img = render(np.array([[0.0, 0.0]]))[0].reshape(16, 16)
    assert img[8:].sum() > 5 * img[:8].sum()


def test_laikago_recording():
    data, names = laikago_dataset()
    assert data.shape[1] == 12 and len(data) > 2400 and len(names) == 12
    assert np.isfinite(data).all() and (np.abs(data) < np.pi).all()


def robot_pose(t):
    s = max(t - 1.0, 0.0)   # still for a second, then moving
    return 0.3 * np.sin(s), 0.5 * np.cos(0.7 * s), np.pi - 0.05 + 1.2 * s


def robot_messages(seconds=6.0):
    """What a real arm records: /joint_states at 1 kHz from the arm's driver (two
    joints) and at 500 Hz from a wrist driver whose continuous joint wraps at +-pi;
    the robot stands still for the first second. (time s, names, positions)."""
    for i in range(int(seconds * 1000)):
        t = 1.0 + i / 1000.0
        a, b, c = robot_pose(t - 1.0)
        yield t, ["shoulder", "elbow"], [a, b]
        if i % 2 == 0:
            yield t, ["wrist"], [(c + np.pi) % (2 * np.pi) - np.pi]


def write_robot_recording(path):
    import rosbag
    import rospy
    from sensor_msgs.msg import JointState
    with rosbag.Bag(path, "w") as bag:
        for t, names, positions in robot_messages():
            msg = JointState(name=names, position=positions)
            msg.header.stamp = rospy.Time.from_sec(t)
            bag.write("/joint_states", msg, msg.header.stamp)
    return robot_pose


def write_ros2_recording(path, storage):
    """The same recording as a ROS 2 bag (rosbags writes it; no ROS 2 needed)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    kind = "sensor_msgs/msg/JointState"
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as bag:
        connection = bag.add_connection("/joint_states", kind, typestore=store)
        for t, names, positions in robot_messages():
            sec, nanosec = int(t), int(round((t - int(t)) * 1e9))
            msg = types[kind](
                header=types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                    frame_id=""),
                name=names, position=np.array(positions), velocity=np.array([], float),
                effort=np.array([], float))
            bag.write(connection, sec * 10 ** 9 + nanosec, store.serialize_cdr(msg, kind))


def check_robot_recording(data, names, report):
    assert names == ["shoulder", "elbow", "wrist"]              # merged by name
    assert report["unwrapped"] == ["wrist"]
    assert np.abs(np.diff(data, axis=0)).max() < 0.1            # no 2 pi jump
    assert data[:, 2].max() > np.pi + 1.0                       # past the wrap, continued
    assert report["input_hz"] == pytest.approx(1000, rel=0.01)
    assert report["resampled_rows"] == pytest.approx(50 * 6, abs=2)   # 50 Hz
    assert 45 <= report["dropped_still"] <= 55                  # the still second
    truth = np.array([robot_pose(t) for t in np.linspace(1.0, 5.0, 50)])
    assert np.abs(data[-50:, :2] - truth[:, :2]).min() < 0.01


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_ros2_recording_reads_like_a_ros1_one(tmp_path, storage):
    path = tmp_path / ("robot_" + storage)
    write_ros2_recording(path, storage)
    report = {}
    check_robot_recording(*load_data(str(path), report=report), report)
    bag_file = next(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    data, names = load_data(str(bag_file), joints=["wrist"])   # the file alone, too
    assert names == ["wrist"] and len(data) == pytest.approx(250, abs=5)
    with pytest.raises(DataError, match="no topic /arm_states"):
        load_data(str(path), topic="/arm_states")


def test_a_real_robot_recording_trains_without_preprocessing(tmp_path):
    pytest.importorskip("rosbag")
    from latent_geodesics.model.iwae import load_model
    from latent_geodesics.model.training import main
    path = str(tmp_path / "robot.bag")
    write_robot_recording(path)
    report = {}
    data, names = load_data(path, report=report)
    check_robot_recording(data, names, report)
    # train_iwae as a user runs it: no preprocessing, the report says what was done
    out = str(tmp_path / "model")
    main(["--data", path, "--out", out, "--joints", "wrist", "shoulder", "--epochs", "3",
          "--latent-dim", "1", "--quiet"])
    model = load_model(out, "cpu")
    assert model.joint_names == ["wrist", "shoulder"]
    recorded = model.meta["report"]["recording"]
    assert recorded["joints"] == ["wrist", "shoulder"] and recorded["unwrapped"] == ["wrist"]


def test_joints_selects_columns_of_any_format(tmp_path):
    np.savez(tmp_path / "d.npz", data=DATA, joint_names=np.array(NAMES))
    data, names = load_data(str(tmp_path / "d.npz"), joints=[NAMES[2], NAMES[0]])
    assert names == [NAMES[2], NAMES[0]] and np.array_equal(data, DATA[:, [2, 0]])
    with pytest.raises(DataError, match="no joints"):
        load_data(str(tmp_path / "d.npz"), joints=["gripper"])


def test_a_ros1_bag_converts_to_a_ros2_one_that_reads_the_same(tmp_path):
    pytest.importorskip("rosbag")
    from latent_geodesics.data.recordings import to_ros2_bag
    write_robot_recording(str(tmp_path / "robot.bag"))
    to_ros2_bag(tmp_path / "robot.bag", tmp_path / "robot_ros2")
    one, two = {}, {}
    data1, names1 = load_data(str(tmp_path / "robot.bag"), report=one)
    data2, names2 = load_data(str(tmp_path / "robot_ros2"), report=two)
    assert names1 == names2 and np.array_equal(data1, data2) and one == two


def test_a_csv_is_parsed_a_block_at_a_time(tmp_path, monkeypatch):
    """Rows held as Python strings took 9.8 GB for 10M rows; one block at a time,
    the peak stays a small multiple of the numbers themselves."""
    import tracemalloc

    import latent_geodesics.data.loaders as loaders
    rows = np.random.default_rng(1).normal(size=(100_000, 4))
    path = tmp_path / "big.csv"
    np.savetxt(path, rows, delimiter=",", header="a,b,c,d", comments="")
    monkeypatch.setattr(loaders, "CSV_BLOCK_ROWS", 1000, raising=False)
    tracemalloc.start()
    try:
        data, names = load_data(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert names == ["a", "b", "c", "d"] and np.allclose(data, rows)
    assert peak < 3 * rows.nbytes, "%.0f MB for %.0f MB" % (peak / 1e6, rows.nbytes / 1e6)


def test_csv_lines_are_named_and_never_echoed(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n\n3,1+4j\n")
    with pytest.raises(DataError, match="line 4, column 2 is a complex number"):
        load_data(str(path))
    path.write_text("a,b\n1,2\n3,secret\n")
    with pytest.raises(DataError, match="line 3, column 2 is not a number") as refused:
        load_data(str(path))
    assert "secret" not in str(refused.value)
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3 has 1 values, expected 2"):
        load_data(str(path))


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "d.csv"
    np.savetxt(path, DATA, delimiter=",", header=",".join(NAMES), comments="",
               encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    data, names = load_data(str(path))
    assert names == NAMES and np.allclose(data, DATA)


@pytest.mark.parametrize("array,fragment", [
    (np.float64(3.0), r"shape \(\): expected a table"),
    (np.arange(6.0), r"shape \(6,\): expected a table"),
    (DATA + 1j * DATA, "complex numbers: joint positions are real"),
    (np.array([["1", "2"]] * 3), "not numbers"),
    (np.zeros((3, 10_001)), "10001 columns, more than the 10000 joints"),
])
@pytest.mark.parametrize("ext", ["npy", "npz"])
def test_arrays_that_are_not_real_tables_are_refused(tmp_path, array, fragment, ext):
    path = str(tmp_path / ("d." + ext))
    if ext == "npy":
        np.save(path, array)
    else:
        np.savez(path, data=array)
    with pytest.raises(DataError, match=fragment):
        load_data(path)


def test_too_many_csv_columns_are_refused(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["1"] * 10_001) + "\n")
    with pytest.raises(DataError, match="10001 columns.*select the joints"):
        load_data(str(path))


@pytest.mark.parametrize("data,fragment", [
    (DATA * 1e300, "beyond"),
    (DATA + 1j * DATA, "complex numbers"),
])
def test_validate_refuses_values_that_are_no_joint_positions(data, fragment):
    with pytest.raises(DataError, match=fragment):
        validate(data, NAMES)


def test_a_recording_with_a_pause_skips_it():
    """Ten messages over a day: the sample-and-hold grid is built over the recorded
    stretches only (231 days made a 7.45 GiB grid for 10 messages)."""
    from latent_geodesics.data.recordings import from_samples
    day = 86_400.0
    samples = [(t, ["a", "b"], [np.sin(t), np.cos(t)])
               for t in np.r_[np.linspace(1.0, 2.0, 5), np.linspace(1.0 + day, 2.0 + day, 5)]]
    data, names, info = from_samples(samples, still=0.0)
    assert info["resampled_rows"] <= 2 * 51 and info["gaps_skipped"] == 1
    assert info["seconds"] == pytest.approx(2.0) and info["gap_seconds"] == pytest.approx(day - 1)
    assert np.allclose(data[-1], [np.sin(2.0 + day), np.cos(2.0 + day)])
    with pytest.raises(DataError, match="makes 2000.* rows, more than 20000000: lower the rate"):
        from_samples(samples, rate=1e7)


def test_numpy_savetxt_header_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "d.csv"
    np.savetxt(path, DATA, delimiter=",", header=",".join(NAMES))   # '# a,b,c'
    assert path.read_text().startswith("# a,b,c\n")
    data, names = load_data(str(path))
    assert names == NAMES and np.allclose(data, DATA)


def test_a_first_row_mixing_numbers_and_names_is_a_typo_with_its_place(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1.5,2.x5,3\n4,5,6\n")
    with pytest.raises(DataError, match="line 1, column 2 is not a number, yet column 1 is"):
        load_data(str(path))


@pytest.mark.parametrize("delimiter,name", [(";", "';'"), ("\t", "tabs"), (" ", "spaces")])
@pytest.mark.parametrize("header", [True, False])
def test_other_delimiters_get_a_hint(tmp_path, delimiter, name, header):
    path = tmp_path / "d.csv"
    np.savetxt(path, DATA, delimiter=delimiter, header=delimiter.join(NAMES) if header else "",
               comments="")
    with pytest.raises(DataError, match="line %d holds numbers separated by %s, not commas: "
                       "write the file comma-separated" % (2 if header else 1, name)):
        load_data(str(path))


def test_a_decimal_comma_file_gets_the_delimiter_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b\n0,5;1\n1,25;0,75\n")   # a spreadsheet in a decimal-comma locale
    with pytest.raises(DataError, match="line 2 holds numbers separated by ';'.*decimal point"):
        load_data(str(path))


@pytest.mark.parametrize("value,fragment", [("nan", "NaN or inf"), ("1e9", "values beyond")])
def test_bad_values_are_placed_by_row_and_column(tmp_path, value, fragment):
    path = tmp_path / "d.csv"
    rows = DATA.copy()
    rows[[4, 7], 2] = float(value)
    np.savetxt(path, rows, delimiter=",", header=",".join(NAMES), comments="")
    with pytest.raises(DataError, match=r"2 rows hold %s.*\(first: data row 5, column 3; rows "
                       "counted from 1, a header not counted\\)" % fragment):
        validate(*load_data(str(path)))
