#!/usr/bin/env bash
# The tests that need the ROS environment. Usage: test/run_rostests.sh CATKIN_WS
#  1. pytest checks of node start-up failures, a relaunch, the README's commands, the
#     main job (the demo in its quick mode) and the README's robot and active-learning
#     blocks as written;
#  2. every rostest, the standard way: `catkin_make run_tests` (each starts its own
#     roscore; CMake trains their fixture models first), then catkin_test_results.
set -eo pipefail
ws=$(realpath "${1:?catkin workspace}")
here=$(dirname "$(realpath "$0")")
status=0
echo "== start-up failures, the README's commands, the demo (pytest, ROS environment)"
python -m pytest -q "$here/ros/test_node_startup.py" "$here/ros/test_relaunch.py" \
  "$here/ros/test_readme_commands.py" "$here/ros/test_demo.py" "$here/ros/test_readme_robot.py" \
  "$here/ros/test_teacher_timeout.py" "$here/ros/test_reload_limits.py" \
  "$here/ros/test_vendored_msgs.py" "$here/ros/test_readme_learner.py" \
  || status=1
# A process of its own: rospy.init_node binds a process to one node name and master.
python -m pytest -q "$here/ros/test_viewer.py" || status=1
echo "== rostests: catkin_make run_tests"
cd "$ws"
rm -rf build/test_results/latent_geodesics
catkin_make run_tests_latent_geodesics > build/run_tests.log 2>&1 \
  || { tail -60 build/run_tests.log; status=1; }
grep -E "^\[ROSTEST\]|^ \* |SUMMARY|RESULT|FAILURE|ERROR" build/run_tests.log | head -80 || true
catkin_test_results --verbose build/test_results/latent_geodesics || status=1
exit $status
