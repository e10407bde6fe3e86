#!/usr/bin/env bash
# The ROS 2 front end's tests: real rclpy nodes in their own processes, in the ROS 2
# venv (ros2/setup.sh). Usage: test/run_ros2_tests.sh VENV [FIXTURE_DIR]
# FIXTURE_DIR: models test/ros/train_fixture.py made (the rostests'), else trained here.
set -eo pipefail
venv=$(realpath "${1:?the ROS 2 venv}")
here=$(dirname "$(realpath "$0")")
[ -f /opt/ros/jazzy/setup.bash ] && source /opt/ros/jazzy/setup.bash
[ -n "${2:-}" ] && [ -d "$2/fixture_model_b" ] && export LG_FIXTURE_DIR=$(realpath "$2")
echo "== ROS 2 (rclpy $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ros-rclpy"))' 2>/dev/null || echo system)): nodes started as the README shows"
cd "$here/.."
PYTHONPATH=$PWD/src "$venv/bin/python" -m pytest -q test/ros2
