"""The active-learning paper's two experiments (Chen et al., IROS 2018), in-process:

(a) a pendulum observed from 16 x 16 images, with no data for |angle| in 0.8-1.6 rad;
(b) the simulated arm moving between two skills (reaching left and right of a band
    of the table that no demonstration touches).

Each round: select queries (combined, MF only, uncertainty only, random), record
which land in the true gap (decoded, then judged by the simulator's ground truth),
ask the simulated teacher, fine-tune on everything so far. Metric per round: the
share of queries in the gap and the smoothness of gap-crossing graph geodesics
(largest joint or pixel step over the mean step, 1 = even), over seeds.
"""
import time

import numpy as np

from latent_geodesics.active_learning import evaluate, select_queries
from latent_geodesics.data.arm import Workspace, arm_dataset, fingertip
from latent_geodesics.data.pendulum import pendulum_dataset, render, states_near
from latent_geodesics.evaluation import arm_evaluation_set, pendulum_evaluation_set
from latent_geodesics.graph import LatentGraph
from latent_geodesics.teachers import ArmTeacher, Refused
from latent_geodesics.training import train_iwae

SELECTORS = ("combined", "mf", "uncertainty", "random")
HOLE = (0.8, 1.6)   # the pendulum's missing |angle| band, radians
TEMPLATE_ANGLES = np.linspace(-np.pi, np.pi, 721)


class PendulumImages:
    """Observations are rendered images; the teacher reads the angle off a queried
    image (template matching) and answers with images of rollouts through it."""
    name = "pendulum from images"
    unit = "pixel"

    def __init__(self, seed):
        states, _ = pendulum_dataset(n_rollouts=30, hole=HOLE, seed=seed)
        self.data = render(states)
        self.names = ["pixel_%d" % i for i in range(self.data.shape[1])]
        pairs, held_out = pendulum_evaluation_set(seed=123)
        self.pairs = render(pairs.reshape(-1, 2)).reshape(len(pairs), 2, -1)
        self.held_out = render(held_out)
        self.templates = render(np.c_[TEMPLATE_ANGLES, np.zeros_like(TEMPLATE_ANGLES)])
        self.rng = np.random.default_rng(seed)

    def angle(self, images):
        return TEMPLATE_ANGLES[np.argmax(np.atleast_2d(images) @ self.templates.T, axis=1)]

    def in_gap(self, images):
        a = np.abs(self.angle(images))
        return (a >= HOLE[0]) & (a <= HOLE[1])

    def demonstrate(self, image):
        state = np.array([self.angle(image)[0], 0.0])
        return render(states_near(state, n=10, seed=int(self.rng.integers(1 << 31))))


class ArmTwoSkills:
    """The arm's data: reaching left and right of a band of table targets that no
    demonstration touches. A query is in the gap when its fingertip is low over
    that band (ground truth from the arm's kinematics)."""
    name = "arm, two skills"
    unit = "joint"

    def __init__(self, seed):
        arm = arm_dataset(n_demos=150, hole=True, seed=seed)
        self.data, self.names = arm.data, arm.joint_names
        self.pairs, self.held_out = arm_evaluation_set()
        self.band = Workspace.hole_y
        self.teacher = ArmTeacher()

    def in_gap(self, q):
        tip = fingertip(np.atleast_2d(q)).numpy()
        return (tip[:, 1] >= self.band[0]) & (tip[:, 1] <= self.band[1]) & (tip[:, 2] < 0.2)

    def demonstrate(self, q):
        return self.teacher.demonstrate(q)


def run(world, selector, seed, rounds, queries, epochs):
    model, _ = train_iwae(world.data, world.names, seed=seed, device="cpu", progress=False)
    data = world.data
    history = []
    for rnd in range(rounds + 1):
        graph = LatentGraph(model, model.latents)
        row = {"round": rnd, "demonstrations": len(data) - len(world.data),
               **evaluate(model, graph, world.pairs, world.held_out)}
        if rnd == rounds:
            history.append(row)
            break
        q = select_queries(model, graph, queries, selector, seed=seed * 100 + rnd)
        row["in_gap"] = float(np.mean(world.in_gap(q.positions)))
        history.append(row)
        new = []
        for config in q.positions:
            try:
                new.append(world.demonstrate(config))
            except Refused:
                pass
        if new:
            data = np.concatenate([data] + new)
        model, _ = train_iwae(data, world.names, seed=seed, device="cpu", progress=False,
                              init=model, epochs=epochs)
    return history


def gap_experiment(world_cls, seeds=(0, 1, 2, 3, 4), rounds=3, queries=6, epochs=30,
                   log=print):
    runs = {s: [] for s in SELECTORS}
    for seed in seeds:
        world = world_cls(seed)
        for selector in SELECTORS:
            start = time.perf_counter()
            runs[selector].append(run(world, selector, seed, rounds, queries, epochs))
            h = runs[selector][-1]
            log("   %s seed %d %s: in gap %s, smoothness %s (%.0f s)" % (
                world.name, seed, selector, [round(r["in_gap"], 2) for r in h[:-1]],
                [round(r["smoothness"], 2) for r in h], time.perf_counter() - start))
    return {"name": world.name, "unit": world.unit, "seeds": list(seeds), "rounds": rounds,
            "queries_per_round": queries, "epochs_per_round": epochs, "runs": runs,
            "summary": summarise(runs)}


def summarise(runs):
    out = {}
    for selector, histories in runs.items():
        share = np.array([[r["in_gap"] for r in h[:-1]] for h in histories])
        smooth = np.array([[r["smoothness"] for r in h] for h in histories])
        demos = np.array([[r["demonstrations"] for r in h] for h in histories]).mean(0)
        out[selector] = {"in_gap": float(share.mean()), "in_gap_sd": float(share.mean(1).std()),
                         "in_gap_per_round": share.mean(0).tolist(),
                         "smoothness": smooth.mean(0).tolist(),
                         "smoothness_sd": smooth.std(0).tolist(),
                         "demonstrations": demos.tolist()}
    active, random = out["combined"], out["random"]
    out["in_gap_ratio"] = active["in_gap"] / max(random["in_gap"], 1e-9)
    target = random["smoothness"][-1]
    reached = [d for d, s in zip(active["demonstrations"], active["smoothness"]) if s <= target]
    out["active_demos_to_random_final"] = reached[0] if reached else None
    out["demo_ratio"] = (reached[0] / random["demonstrations"][-1]
                         if reached and random["demonstrations"][-1] else None)
    return out


def figure(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    s = result["summary"]
    for selector in SELECTORS:
        r = s[selector]
        a.plot(range(1, result["rounds"] + 1), r["in_gap_per_round"], "o-", label=selector)
        b.errorbar(r["demonstrations"], r["smoothness"], yerr=r["smoothness_sd"], marker="o",
                   capsize=3, label=selector)
    a.set(xlabel="round", ylabel="share of queries in the gap", ylim=(-0.05, 1.05),
          title=result["name"])
    b.set(xlabel="demonstration %ss added" % ("image" if result["unit"] == "pixel" else "pose"),
          ylabel="largest / mean %s step across the gap" % result["unit"],
          title="gap-crossing geodesics (mean ± sd, %d seeds)" % len(result["seeds"]))
    a.legend(), b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_lines(results):
    md = ["", "## 10. The IROS 2018 experiments: queries in the gap, smoothness across it",
          "Per experiment: %s; mean over seeds. Target: active (combined) >= 3x random's "
          "share in the gap, and active reaching random's final smoothness with <= half "
          "its demonstrations." % ", ".join(SELECTORS), ""]
    for key in ("gap_pendulum", "gap_arm"):
        if key not in results:
            continue
        r = results[key]
        s = r["summary"]
        md += ["### %s (%d seeds, %d rounds x %d queries, %d fine-tuning epochs; figure "
               "%s.png)" % (r["name"], len(r["seeds"]), r["rounds"], r["queries_per_round"],
                            r["epochs_per_round"], key), "",
               "| selector | queries in the gap | smoothness by round | demonstrations added |",
               "|---|---|---|---|"]
        for selector in SELECTORS:
            x = s[selector]
            md.append("| %s | %.2f ± %.2f | %s | %s |" % (
                selector, x["in_gap"], x["in_gap_sd"],
                " → ".join("%.2f" % v for v in x["smoothness"]),
                " → ".join("%.0f" % v for v in x["demonstrations"])))
        md += ["", "Active / random share in the gap: %.1fx. Active reaches random's final "
               "smoothness (%.2f) %s." % (
                   s["in_gap_ratio"], s["random"]["smoothness"][-1],
                   "after %.0f added demonstrations (ratio %.2f)" % (
                       s["active_demos_to_random_final"], s["demo_ratio"])
                   if s["demo_ratio"] is not None else "not within the budget"), ""]
    return md


def gap_experiments(results_dir, seeds=(0, 1, 2, 3, 4)):
    import os
    out = {}
    for key, world in (("gap_pendulum", PendulumImages), ("gap_arm", ArmTwoSkills)):
        out[key] = gap_experiment(world, seeds)
        figure(out[key], os.path.join(results_dir, key + ".png"))
    return out


if __name__ == "__main__":
    import sys
    world = {"pendulum": PendulumImages, "arm": ArmTwoSkills}[sys.argv[1]]
    result = gap_experiment(world, seeds=tuple(range(int(sys.argv[2]) if len(sys.argv) > 2
                                                     else 1)))
    print("\n".join(report_lines({"gap_" + sys.argv[1]: result})))
