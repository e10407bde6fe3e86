"""python -m latent_geodesics.ros2 NODE [--params-file FILE] [--ros-args ...]

NODE: server (geodesic_server), learner (active_learner), demonstrator (the
simulated teacher) or player (trajectory_player). FILE may be a ROS 2 parameter
file or one of the package's ROS 1 ones (config/geodesic_server.yaml): the same
values either way."""
import argparse
import importlib
import os
import sys

from latent_geodesics.ros2.parameters import params_file_args

NODES = {"server": ("geodesic_server", "GeodesicServer"),
         "learner": ("active_learner", "ActiveLearnerNode"),
         "demonstrator": ("demonstrator", "Demonstrator"),
         "player": ("trajectory_player", "TrajectoryPlayer")}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    own = argv[:len(argv) - len(ros_args)]
    parser = argparse.ArgumentParser(prog="python -m latent_geodesics.ros2",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("node", choices=sorted(NODES))
    parser.add_argument("--params-file", help="parameters (ROS 2 or the ROS 1 YAML form)")
    args = parser.parse_args(own)
    if args.params_file and not os.path.isfile(args.params_file):
        relative = not os.path.isabs(args.params_file)
        parser.error("--params-file %s: no such file%s" % (args.params_file, (
            " in %s; give the file's full path (the repository's config/ holds "
            "geodesic_server.yaml and active_learner.yaml)" % os.getcwd()) if relative else ""))
    if args.params_file:   # first: the command line's own -p settings come after it and win
        ros_args = ["--ros-args", *params_file_args(args.params_file), *ros_args[1:]]
    module, cls = NODES[args.node]
    node_class = getattr(importlib.import_module("latent_geodesics.ros2." + module), cls)
    from latent_geodesics.ros2 import run_node
    run_node(node_class, ["latent_geodesics.ros2"] + ros_args)


if __name__ == "__main__":
    main()
