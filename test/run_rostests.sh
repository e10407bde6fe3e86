#!/usr/bin/env bash
# Run every rostest (each starts its own roscore) against a freshly trained
# fixture model. Usage: test/run_rostests.sh WORK_DIR
set -eo pipefail
work=$(realpath -m "${1:?work dir}")
mkdir -p "$work"
model="$work/fixture_model"
rm -rf "$model" "$work/fixture_model_b" "$work/active_learning" "$work/any_teacher"
python "$(dirname "$0")/ros/train_fixture.py" "$model" "$work/fixture_model_b"
status=0
echo "== start-up failures and the README's commands (pytest, ROS environment)"
python -m pytest -q "$(dirname "$0")/ros/test_node_startup.py" \
  "$(dirname "$0")/ros/test_readme_commands.py" || status=1
for t in "$(dirname "$0")"/ros/*.test; do
  echo "== rostest $(basename "$t")"
  rostest latent_geodesics "$(basename "$t")" model_dir:="$model" work_dir:="$work" || status=1
done
exit $status
