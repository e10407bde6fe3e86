"""package.xml declares what the code uses, and nothing it does not (rosdep installs
from it), and the rostests need no argument that `catkin_make run_tests` lacks."""
import ast
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Imported module -> the ROS package (rosdep key) that provides it.
ROS_MODULES = {"rospy", "rosgraph", "roslaunch", "rosnode", "rostest", "rosbag",
               "actionlib", "tf2_ros", "std_msgs", "sensor_msgs", "trajectory_msgs",
               "actionlib_msgs", "nav_msgs", "geometry_msgs", "visualization_msgs",
               "std_srvs", "urdf_parser_py", "control_msgs", "diagnostic_msgs",
               "diagnostic_updater", "tf2_msgs", "moveit_msgs", "shape_msgs", "octomap_msgs",
               "object_recognition_msgs"}
KEY = {"urdf_parser_py": "urdfdom_py"}


def declared(package_xml=ROOT / "package.xml"):
    tree = ElementTree.parse(package_xml)
    return {tag: {e.text.strip() for e in tree.iter(tag)}
            for tag in ("depend", "build_depend", "exec_depend", "test_depend",
                        "buildtool_depend")}


def imported(paths, modules=ROS_MODULES):
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found |= {n.split(".")[0] for n in names} & modules
    return {KEY.get(m, m) for m in found}


def python_files(*dirs):
    files = [p for d in dirs for p in (ROOT / d).rglob("*.py")]
    return files + [p for p in (ROOT / "scripts").iterdir()
                    if p.read_text().startswith("#!/usr/bin/env python")]


ROS2_MODULES = ROS_MODULES | {"rclpy", "rcl_interfaces", "action_msgs", "builtin_interfaces"}


def ros2_files(*dirs):
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_every_ros_package_the_code_imports_is_declared():
    deps = declared()
    run = deps["depend"] | deps["exec_depend"]
    ros1 = [p for p in python_files("src", "demo") if "ros2" not in p.parts]
    assert imported(ros1) <= run
    tested = imported(python_files("test") + [ROOT / "test" / "ros" / "train_fixture.py"])
    assert tested <= run | deps["test_depend"]


def test_the_ros2_package_declares_what_the_ros2_nodes_and_tests_import():
    deps = declared(ROOT / "ros2" / "package.xml")
    found = imported(ros2_files("src/latent_geodesics/ros2", "test/ros2"), ROS2_MODULES)
    assert found <= deps["depend"] | deps["exec_depend"]
    assert {"rclpy", "trajectory_msgs", "rcl_interfaces"} <= found


def test_the_viewer_package_declares_its_imports_and_the_server_no_viewer():
    viz = declared(ROOT / "viz" / "package.xml")
    code = [p for p in (ROOT / "viz").rglob("*") if p.suffix == ".py"
            or p.parent.name == "scripts"]
    assert imported(code) <= viz["exec_depend"]
    assert {"rviz", "robot_state_publisher", "tf2_ros"} <= viz["exec_depend"]
    core = declared()
    # tf2_ros is the server's own too: objects arrive in any frame tf2 can transform
    # (ros/scene.py); the viewer's display packages stay out of it.
    assert not {"rviz", "robot_state_publisher"} & (core["depend"] | core["exec_depend"])
    assert "tf2_ros" in core["exec_depend"]


def test_launch_files_tools_and_setup_are_declared():
    deps = declared()
    assert {"roslaunch", "rosgraph", "rosbash"} <= deps["exec_depend"]   # launch, rosrun
    assert "python3-catkin-pkg" in deps["buildtool_depend"] | deps["build_depend"]  # setup.py


def test_no_ros_package_is_declared_that_nothing_uses():
    deps = declared()
    used = imported(python_files("src", "demo", "test"))
    launch = " ".join(p.read_text() for p in (ROOT / "launch").glob("*.launch"))
    messages = " ".join(p.read_text() for d in ("msg", "srv", "action")
                        for p in (ROOT / d).iterdir())
    generated = re.search(r"generate_messages\(DEPENDENCIES([^)]*)\)",
                          (ROOT / "CMakeLists.txt").read_text()).group(1).split()
    libraries = (deps["depend"] | deps["exec_depend"]) & ROS_MODULES - {"roslaunch"}
    for package in libraries:
        assert (package in used or 'pkg="%s"' % package in launch or package + "/" in messages
                or package in generated), package + " is declared but not used"


def test_python_keys_are_debian_packages_or_pip_keys():
    """rosdep resolves python3-* keys to Debian packages of that name; a key that is
    no package must be a -pip key (python3-pybullet, say, is not: python3-pybullet-pip)."""
    import shutil
    import subprocess
    if not shutil.which("apt-cache"):
        pytest.skip("no apt-cache to ask")
    keys = {k for tags in declared().values() for k in tags
            if k.startswith("python3-") and not k.endswith("-pip")}
    keys |= {k for tags in declared(ROOT / "viz" / "package.xml").values() for k in tags
             if k.startswith("python3-") and not k.endswith("-pip")}
    unknown = [k for k in sorted(keys) if subprocess.run(
        ["apt-cache", "show", k], capture_output=True).returncode != 0]
    assert not unknown, "not Debian packages: %s" % unknown


def test_rostests_need_only_the_work_dir_cmake_passes():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "ARGS work_dir:=" in cmake
    for test in (ROOT / "test" / "ros").glob("*.test"):
        required = re.findall(r'<arg name="(\w+)"\s*/>', test.read_text())
        assert required in ([], ["work_dir"]), (test.name, required)


def test_public_api_names_resolve_and_cost_nothing_until_used():
    import subprocess
    import sys
    code = ("import sys, latent_geodesics as lg; assert 'latent_geodesics.model.training' not in "
            "sys.modules; assert all(callable(getattr(lg, n)) for n in lg.__all__)")
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run([sys.executable, "-m", "latent_geodesics.model.training", "--help"],
                          capture_output=True, text=True, check=True)
    assert "RuntimeWarning" not in done.stderr


def test_license_file_matches_package_xml():
    import os
    import xml.etree.ElementTree as ET
    root = os.path.join(os.path.dirname(__file__), "..")
    declared = ET.parse(os.path.join(root, "package.xml")).find("license").text.strip()
    with open(os.path.join(root, "LICENSE")) as f:
        assert f.readline().strip() == "%s License" % declared
