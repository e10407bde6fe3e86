"""Active learning (MF and uncertainty) vs random queries on the simulated arm with
its data hole: the same loop as the active_learner node, without ROS, over seeds.

Per round: smoothness of the decoded graph geodesics between held-out pose pairs
across the hole (largest joint step / mean step; 1 is perfectly even), the
largest log MF along them, and the held-out reconstruction RMSE.
"""
import os
import tempfile
from dataclasses import asdict

import numpy as np

from latent_geodesics.data import arm_dataset
from latent_geodesics.learning.evaluation import arm_evaluation_set
from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
from latent_geodesics.learning.selection import evaluate
from latent_geodesics.learning.store import DemoStore
from latent_geodesics.learning.teachers import ArmTeacher
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.loading import load_model_with_graph
from latent_geodesics.model.training import train_iwae

SELECTORS = ("combined", "random")


def run(selector, seed, work, pairs, held_out, rounds, queries, epochs, latent_dim):
    arm = arm_dataset(n_demos=150, hole=True, seed=seed)
    model, _ = train_iwae(arm.data, arm.joint_names, latent_dim=latent_dim, epochs=80,
                          seed=seed, device="cpu", progress=False)
    model_dir = os.path.join(work, "initial")
    save_model(model, model_dir, model.meta)
    store = DemoStore(os.path.join(work, "store.db"))
    store.seed(arm.data, arm.joint_names)

    def metrics(directory):
        return evaluate(*load_model_with_graph(directory, "cpu"), pairs, held_out)

    history = [{"round": 0, "demonstrations": 0, **asdict(metrics(model_dir))}]
    config = LoopConfig(rounds=rounds, queries_per_round=queries, selector=selector,
                        epochs=epochs, seed=seed, device="cpu")

    def record(rnd, m):
        history.append({"round": rnd, "demonstrations": len(store.demonstration_ids()),
                        **asdict(m)})

    ActiveLearner(store, work, model_dir, ArmTeacher().demonstrate, config, evaluate=metrics,
                  on_round=record, log=lambda m: None).run()
    store.close()
    return history


def active_learning_eval(results_dir, seeds=(0, 1, 2, 3, 4), rounds=6, queries=4, epochs=20,
                         latent_dim=2):
    pairs, held_out = arm_evaluation_set()
    runs = {s: [] for s in SELECTORS}
    for seed in seeds:
        for selector in SELECTORS:
            with tempfile.TemporaryDirectory(prefix="al_%s_%d_" % (selector, seed)) as work:
                runs[selector].append(run(selector, seed, work, pairs, held_out, rounds,
                                          queries, epochs, latent_dim))
            print("   %s seed %d: smoothness %s" % (selector, seed, [
                round(h["smoothness"], 3) for h in runs[selector][-1]]), flush=True)
    summary = summarise(runs, rounds * queries)
    suffix = "" if latent_dim == 2 else "_%dd" % latent_dim
    figure(runs, os.path.join(results_dir, "active_learning%s.png" % suffix))
    return {"seeds": list(seeds), "rounds": rounds, "queries_per_round": queries,
            "epochs_per_round": epochs, "latent_dim": latent_dim, "runs": runs,
            "summary": summary}


def curve(runs, key):
    """Mean and std over seeds per round, and the demonstration counts."""
    values = np.array([[h[key] for h in r] for r in runs])
    demos = np.array([[h["demonstrations"] for h in r] for r in runs]).mean(0)
    return demos, values.mean(0), values.std(0)


def summarise(runs, budget):
    demos_r, random_curve, _ = curve(runs["random"], "smoothness")
    demos_a, active_curve, _ = curve(runs["combined"], "smoothness")
    target = random_curve[-1]
    # "Reaching random's final level" only means something if random improved on the start.
    random_improved = bool(target < random_curve[0])
    reached = np.flatnonzero(active_curve <= target) if random_improved else []
    needed = float(demos_a[reached[0]]) if len(reached) else None
    return {"random_final_smoothness": float(target),
            "active_final_smoothness": float(active_curve[-1]),
            "initial_smoothness": float(random_curve[0]), "random_improved": random_improved,
            "active_demos_to_reach_random_final": needed,
            "random_demos_at_end": float(demos_r[-1]),
            "active_demos_at_end": float(demos_a[-1]), "budget_queries": budget,
            "demo_ratio": None if needed is None else needed / float(demos_r[-1]),
            "active_curve": active_curve.tolist(), "random_curve": random_curve.tolist(),
            "active_rmse": curve(runs["combined"], "held_out_rmse")[1].tolist(),
            "random_rmse": curve(runs["random"], "held_out_rmse")[1].tolist(),
            "active_max_log_mf": curve(runs["combined"], "max_log_mf")[1].tolist(),
            "random_max_log_mf": curve(runs["random"], "max_log_mf")[1].tolist()}


def figure(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, label in zip(axes, ("smoothness", "max_log_mf", "held_out_rmse"),
                              ("largest step / mean step", "largest log MF",
                               "held-out RMSE [rad]")):
        for selector, colour in zip(SELECTORS, ("C3", "C0")):
            demos, mean, std = curve(runs[selector], key)
            ax.plot(demos, mean, "o-", color=colour,
                    label="MF + uncertainty" if selector == "combined" else "random")
            ax.fill_between(demos, mean - std, mean + std, color=colour, alpha=0.2)
        ax.set_xlabel("demonstrations")
        ax.set_ylabel(label)
    axes[0].set_title("Smoothness of held-out geodesics")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def hole_visibility(seed=0):
    """Where does the initial model put the configurations of the data hole?

    Encodes held-out goal poses with targets inside the hole band and reports their
    latent distance to the nearest training datum (against the graph's neighbour
    reach) and their reconstruction error: a hole the encoder folds onto existing
    data is invisible to latent-space criteria.
    """
    import torch

    from latent_geodesics.graph.latent_graph import LatentGraph
    from latent_geodesics.learning.evaluation import arm_goal_poses
    arm = arm_dataset(n_demos=150, hole=True, seed=seed)
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=80, seed=seed, device="cpu",
                          progress=False)
    graph = LatentGraph(model, model.latents, k=10)
    inside, left, right, _ = arm_goal_poses(150, seed + 100, margin=0.05)
    outside = np.concatenate([left, right])

    def probe(poses):
        with torch.no_grad():
            x = torch.as_tensor(poses, dtype=torch.float32)
            z = model.encode(x)
            err = (model.decode(z) - x).abs().max(1).values.numpy()
        return float(np.median(graph.tree.query(z.numpy())[0])), float(np.median(err))

    (d_in, e_in), (d_out, e_out) = probe(inside), probe(outside)
    return {"reach": graph.reach, "hole_latent_distance": d_in, "hole_max_joint_error": e_in,
            "outside_latent_distance": d_out, "outside_max_joint_error": e_out,
            "n_hole_poses": int(len(inside))}
