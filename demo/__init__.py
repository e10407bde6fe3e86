"""The main job on the embedded default: the simulated Panda arm carrying an object
over a box, with a band of places never demonstrated.

Trains the default model (once), starts a roscore on a free port and the
geodesic server from its launch file, calls its services and action as a
client would, records the published trajectories with rosbag, runs active
learning with the demo's own teacher, and writes a report with figures into the
output directory.
"""
import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from demo.client import TOPICS, closed_bag, endpoints, run_queries, rviz_screenshot
from demo.figures import write_active_learning_figures, write_figures
from demo.learning import run_active_learning
from demo.report import write_report
from demo.task import RouteTeacher, carry_dataset, showcase_pairs
from demo.world import PAIR as WORLD_PAIR
from demo.world import remove_box, run_world_step, world_figure
from latent_geodesics.data import loaders, recordings
from latent_geodesics.data.loaders import data_hash
from latent_geodesics.data.recordings import to_ros2_bag
from latent_geodesics.files import atomic_write
from latent_geodesics.model import iwae, training
from latent_geodesics.model import report as training_report
from latent_geodesics.model.iwae import load_model, save_model
from latent_geodesics.model.loading import model_graph
from latent_geodesics.model.training import DEFAULTS, train_iwae
from latent_geodesics.ros.processes import ros_processes
from latent_geodesics.serving.engine import Settings, endpoint_limit_of
from latent_geodesics.serving.trajectory import JointLimits

# Three latent dimensions: the carries are a 2-D family (place, progress), and a 2-D
# latent space folds it for some seeds (pick and place halves laid on each other,
# joint 1 lost); with 3 every seed tried reconstructed it to the recording noise.
LATENT_DIM = 3


def panda_urdf():
    import rospkg
    return os.path.join(rospkg.RosPack().get_path("latent_geodesics"), "urdf", "panda.urdf")


def world_line(world):
    before = world["before"]
    if "refused" in world:
        return "before the box the motion %s; with it, the server refused: %s" % (
            "went through it" if before["collides"] else "missed it", world["refused"])
    after = world["after"]
    return ("before the box the motion %s (clearance %.3f m); with it, served %s: %s, "
            "smallest clearance %.3f m, %.3f rad from the recorded poses" % (
                "went through it" if before["collides"] else "missed it", before["clearance"],
                after["method"], "COLLIDES" if after["collides"] else "collision-free",
                after["clearance"], after["data_distance"]))


def training_code():
    """A digest of the code that trains the model: a kept model of other code (an
    updated clone's) is trained again."""
    digest = hashlib.sha256()
    for module in (iwae, training, training_report, loaders, recordings):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def default_model(out, epochs):
    """Train the demo's model unless one of these data, epochs and training code is
    already there; also keep its data. Returns (model, model directory, data path,
    carry data)."""
    model_dir = os.path.join(out, "model")
    data_path = os.path.join(out, "carry_data.npz")
    carry = carry_dataset(seed=0)
    atomic_write(data_path, lambda f: np.savez(f, data=carry.data,
                                               joint_names=np.array(carry.joint_names)))
    try:
        model = load_model(model_dir, "cpu")
        if model.meta["training"]["epochs"] == epochs and model.data is not None \
                and model.meta.get("data_sha256") == data_hash(carry.data) \
                and model.meta.get("training_code_sha256") == training_code():
            return model, model_dir, data_path, carry
    except Exception:
        pass
    print("training the demo's model on the simulated arm's carries (%d epochs, latent dim "
          "%d)..." % (epochs, LATENT_DIM))
    model, _ = train_iwae(carry.data, carry.joint_names, latent_dim=LATENT_DIM,
                          epochs=epochs, seed=0, progress=False)
    save_model(model, model_dir, dict(model.meta, training_code_sha256=training_code()))
    return load_model(model_dir, "cpu"), model_dir, data_path, carry


@torch.no_grad()
def reproduced(model, data):
    """(N,) bool: poses the model reconstructs within the server's automatic
    max_endpoint_offset (the server refuses the others as endpoints)."""
    limit, _ = endpoint_limit_of(model, Settings.max_endpoint_offset)
    x = torch.as_tensor(data, dtype=torch.float32)
    return (model.decode(model.encode(x)).double().numpy() - data).__abs__().max(1) <= limit


QUICK = {"epochs": 30, "rounds": 1, "queries": 3, "pairs": 2}   # --quick: the same path, smaller


def arguments(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--rounds", type=int, default=2, help="active-learning rounds")
    p.add_argument("--queries", type=int, default=6, help="queries per round")
    p.add_argument("--pairs", type=int, default=3, help="pick-and-place pairs served")
    p.add_argument("--hole-places", type=int, default=3,
                   help="places in the never-demonstrated band asked for after each round")
    p.add_argument("--quick", action="store_true",
                   help="the same steps, smaller: %s (what make test runs)" % QUICK)
    p.add_argument("--bag2", metavar="DIR",
                   help="also write the served trajectories as a ROS 2 bag (sqlite3) in DIR")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    return args


def main(argv=None):
    args = arguments(argv)
    start, steps = time.time(), []

    def step(name):
        steps.append((name, time.time() - start - sum(s for _, s in steps)))

    os.makedirs(args.out, exist_ok=True)
    model, model_dir, data_path, carry = default_model(args.out, args.epochs)
    teacher = RouteTeacher()
    step("data, model and teacher")
    pairs = showcase_pairs(carry, args.pairs, allowed=reproduced(model, carry.data))
    demos = [carry.data[i:j + 1] for i, j in pairs]   # each pair: one recorded carry
    graph = model_graph(model)[0]   # the server's graph (cached beside the model) for figures
    step("graph")
    with ros_processes(os.path.join(args.out, "ros.log")) as ros:
        services, results, world, screenshot = serve(ros, args, model, model_dir, pairs,
                                                     demos, carry, step)
        write_figures(model, graph, results, args.out, JointLimits.uniform(
            model.joint_names, Settings.max_joint_velocity, Settings.max_joint_acceleration),
            carry, teacher)
        step("figures")
        print("active learning: %d rounds with the demo's teacher..." % args.rounds)
        rounds = run_active_learning(ros, args.out, model_dir, data_path, dict(
            rounds=args.rounds, queries=args.queries, epochs=args.epochs,
            hole_places=args.hole_places), teacher)
        write_active_learning_figures(rounds, args.out, carry, teacher)
        step("active learning (%d rounds of %d queries)" % (args.rounds, args.queries))
    services["rviz"], services["rviz_pixels"] = screenshot[1], screenshot[2]
    services["world"] = world
    world["figure"] = world_figure(world, args.out)
    write_report(model, graph, services, results, args.out, time.time() - start, rounds, steps)
    print(Path(os.path.join(args.out, "report.md")).read_text())
    if not all(r["refined_length"] <= r["straight_line_length"] * (1 + 1e-6) for r in results):
        sys.exit("a geodesic came out longer than its straight line")


def serve(ros, args, model, model_dir, pairs, demos, carry, step):
    """The geodesic server: the pairs' queries (recorded by rosbag), the box on
    the last pair's way, rviz's picture. Returns (services, results, world, screenshot)."""
    urdf = panda_urdf()
    server = ros.launch("latent_geodesics", "geodesic_server.launch",
                        model_dir=os.path.abspath(model_dir), urdf=urdf)
    bag = ros.start(["rosbag", "record", "-O", os.path.join(args.out, "geodesics.bag")]
                    + TOPICS)
    services, results = run_queries(model, pairs, carry.data, demos)
    ros.end(bag)
    if args.bag2:
        to_ros2_bag(closed_bag(os.path.join(args.out, "geodesics.bag")), args.bag2)
        print("ROS 2 bag: %s" % args.bag2)
    step("server start and geodesic queries")
    blocked = pairs[WORLD_PAIR]
    box, world = run_world_step(endpoints(model.joint_names, carry.data[blocked[0]],
                                          carry.data[blocked[1]]), Path(urdf).read_text())
    world["pair"] = pairs.index(blocked) + 1
    print("the robot's world: %s" % world_line(world))
    step("a box on the way (the robot's world)")
    screenshot = rviz_screenshot(ros, args.out, endpoints(model.joint_names,
                                                          *carry.data[list(pairs[0])]))
    print(screenshot[1])
    remove_box(box, world["frame"])
    ros.end(server)
    step("rviz screenshot")
    return services, results, world, screenshot
