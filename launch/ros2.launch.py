"""ROS 2 launch file, for installations that have launch_ros (not on PyPI; the
wheels-only set-up starts the nodes with `python -m latent_geodesics.ros2`, which
this file runs too, so both start the same nodes the same way).

    ros2 launch launch/ros2.launch.py model_dir:=/path/to/model [learner:=true]
"""
import os
import sys

from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def node(name, params_file, *ros_args, condition=None):
    return ExecuteProcess(
        cmd=[sys.executable, "-m", "latent_geodesics.ros2", name,
             *(["--params-file", os.path.join(CONFIG, params_file)] if params_file else []),
             "--ros-args", *ros_args],
        output="screen", condition=condition)


def generate_launch_description():
    model_dir, learner = LaunchConfiguration("model_dir"), LaunchConfiguration("learner")
    with_learner = IfCondition(learner)
    return LaunchDescription([
        DeclareLaunchArgument("model_dir", description="the trained model's directory"),
        DeclareLaunchArgument("learner", default_value="false",
                              description="also the simulated teacher and the learner"),
        DeclareLaunchArgument("initial_data", default_value="",
                              description="the learner's initial data (NPZ, CSV, bag)"),
        node("server", "geodesic_server.yaml", "-p", ["model_dir:=", model_dir]),
        node("demonstrator", None, "-p", "system:=arm", condition=with_learner),
        node("learner", "active_learner.yaml", "-p", ["model_dir:=", model_dir],
             "-p", ["initial_data:=", LaunchConfiguration("initial_data")],
             condition=with_learner),
    ])
