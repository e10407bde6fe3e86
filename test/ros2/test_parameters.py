"""Every ROS 2 node refuses to start on a numeric parameter beyond its range, in
one line naming the parameter (ROS 2 enforces the descriptors' ranges)."""
import contextlib
import subprocess

import pytest

CASES = [("server", "position_tolerance:=1e300", "position_tolerance"),
         ("learner", "teacher_timeout:=1e300", "teacher_timeout"),
         ("demonstrator", "sample_period:=1e300", "sample_period"),
         ("player", "rate:=0.0", "rate")]


@pytest.mark.parametrize("node,setting,name", CASES)
def test_a_node_refuses_to_start_with_a_parameter_out_of_range(fixture_dir, start_node,
                                                               node, setting, name):
    started = start_node(node, "--ros-args", "-r", "__node:=range_%s" % node,
                         "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                         "-p", "device:=cpu", "-p", setting, name="range_" + node)
    with contextlib.suppress(subprocess.TimeoutExpired):   # it serves: asserted below
        started.proc.wait(timeout=120)
    out = started.output()
    assert started.proc.poll() == 1, out[-3000:]
    assert "cannot start" in out and "Parameter %s out of range" % name in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_a_missing_parameter_file_is_one_line_naming_it(capsys):
    from latent_geodesics.ros2.__main__ import main
    with pytest.raises(SystemExit):
        main(["learner", "--params-file", "config/no_such_file.yaml"])
    err = capsys.readouterr().err
    assert "--params-file config/no_such_file.yaml: no such file" in err
    assert "full path" in err and "Traceback" not in err
