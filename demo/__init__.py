"""The main job on the embedded default: the simulated Panda arm with a data hole.

Trains the default model (once), starts a roscore on a free port and the
geodesic server from its launch file, calls its services and action as a
client would, records the published trajectories with rosbag, and writes a
report with figures into the output directory.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from demo.client import (
    TOPICS,
    closed_bag,
    first_pair,
    run_active_learning,
    run_queries,
    rviz_screenshot,
)
from demo.figures import write_figures
from demo.report import write_report
from demo.world import remove_box, run_world_step, world_figure
from latent_geodesics.data import arm_dataset
from latent_geodesics.data.recordings import to_ros2_bag
from latent_geodesics.files import atomic_write
from latent_geodesics.learning.evaluation import hole_side_pairs
from latent_geodesics.model.iwae import load_model, save_model
from latent_geodesics.model.loading import model_graph
from latent_geodesics.model.training import DEFAULTS, train_iwae
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.serving.engine import Settings, endpoint_limit_of
from latent_geodesics.serving.trajectory import JointLimits


def panda_urdf():
    import rospkg
    return os.path.join(rospkg.RosPack().get_path("latent_geodesics"), "urdf", "panda.urdf")


def world_line(world):
    before, after = world["before"], world["after"]
    return ("before the box the motion %s (clearance %.3f m); with it, served %s: %s, "
            "smallest clearance %.3f m, %.3f rad from the recorded poses" % (
                "went through it" if before["collides"] else "missed it", before["clearance"],
                after["method"], "COLLIDES" if after["collides"] else "collision-free",
                after["clearance"], after["data_distance"]))


def default_model(out, epochs):
    """Train the arm model unless a complete one for these epochs is already there;
    also keep its data. Returns (model, model directory, data path, arm data set)."""
    model_dir = os.path.join(out, "model")
    data_path = os.path.join(out, "arm_data.npz")
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    atomic_write(data_path, lambda f: np.savez(f, data=arm.data,
                                               joint_names=np.array(arm.joint_names)))
    try:
        model = load_model(model_dir, "cpu")
        if model.meta["training"]["epochs"] == epochs and model.data is not None:
            return model, model_dir, data_path, arm
    except Exception:
        pass
    print("training the default model on the simulated arm (%d epochs)..." % epochs)
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=epochs, seed=0, progress=False)
    save_model(model, model_dir, model.meta)
    return load_model(model_dir, "cpu"), model_dir, data_path, arm


@torch.no_grad()
def reproduced(model, data):
    """(N,) bool: poses the model reconstructs within the server's automatic
    max_endpoint_offset (the server refuses the others as endpoints)."""
    limit, _ = endpoint_limit_of(model, Settings.max_endpoint_offset)
    x = torch.as_tensor(data, dtype=torch.float32)
    return (model.decode(model.encode(x)).double().numpy() - data).__abs__().max(1) <= limit


QUICK = {"epochs": 30, "rounds": 1, "queries": 3, "pairs": 2}   # --quick: the same path, smaller


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--rounds", type=int, default=2, help="active-learning rounds")
    p.add_argument("--queries", type=int, default=6, help="queries per round")
    p.add_argument("--pairs", type=int, default=3, help="pose pairs across the data hole")
    p.add_argument("--quick", action="store_true",
                   help="the same steps, smaller: %s (what make test runs)" % QUICK)
    p.add_argument("--bag2", metavar="DIR",
                   help="also write the served trajectories as a ROS 2 bag (sqlite3) in DIR")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    start, steps = time.time(), []

    def step(name):
        steps.append((name, time.time() - start - sum(s for _, s in steps)))

    os.makedirs(args.out, exist_ok=True)
    model, model_dir, data_path, arm = default_model(args.out, args.epochs)
    step("data and model")
    pairs = hole_side_pairs(arm, args.pairs, allowed=reproduced(model, arm.data))
    graph = model_graph(model)[0]   # the server's graph (cached beside the model) for figures
    step("graph")
    with ros_processes(os.path.join(args.out, "ros.log")) as ros:
        urdf = panda_urdf()
        server = ros.launch("latent_geodesics", "geodesic_server.launch",
                            model_dir=os.path.abspath(model_dir), urdf=urdf)
        bag = ros.start(["rosbag", "record", "-O", os.path.join(args.out, "geodesics.bag")]
                        + TOPICS)
        services, results = run_queries(model, pairs, arm.data)
        ros.end(bag)
        if args.bag2:
            to_ros2_bag(closed_bag(os.path.join(args.out, "geodesics.bag")), args.bag2)
            print("ROS 2 bag: %s" % args.bag2)
        step("server start and geodesic queries")
        box, world = run_world_step(first_pair(model, pairs, arm.data),
                                    Path(urdf).read_text())
        print("the robot's world: %s" % world_line(world))
        step("a box on the way (the robot's world)")
        screenshot = rviz_screenshot(ros, args.out, first_pair(model, pairs, arm.data))
        print(screenshot[1])
        remove_box(box, world["frame"])
        ros.end(server)
        step("rviz screenshot")
        write_figures(model, graph, results, args.out, JointLimits.uniform(
            model.joint_names, Settings.max_joint_velocity, Settings.max_joint_acceleration))
        step("figures")
        print("active learning: %d rounds with the simulated demonstrator..." % args.rounds)
        rounds = run_active_learning(ros, args.out, model_dir, data_path, args.rounds,
                                     args.queries, args.epochs)
        step("active learning (%d rounds of %d queries)" % (args.rounds, args.queries))
    services["rviz"], services["rviz_pixels"] = screenshot[1], screenshot[2]
    services["world"] = world
    world["figure"] = world_figure(world, args.out)
    write_report(model, graph, services, results, args.out, time.time() - start, rounds, steps)
    print(Path(os.path.join(args.out, "report.md")).read_text())
    if not all(r["refined_length"] <= r["straight_line_length"] * (1 + 1e-9) for r in results):
        sys.exit("a geodesic came out longer than its straight line")
