"""The active-learning paper's two experiments (Chen et al., IROS 2018), in-process:

(a) a pendulum observed from 16 x 16 images, with no data for |angle| in 0.8-1.6 rad;
(b) the simulated arm moving between two skills (reaching the table in two sectors
    of azimuth, the sector between them never demonstrated; models retrained from
    scratch each round);
and (c) the smallest known gap: one planar motion recorded on two arcs, the stretch
    between them never shown, each round's model trained from scratch.

Each round: select queries (combined, MF only, uncertainty only, random), record
which land in the true gap (decoded, then judged by the simulator's ground truth),
ask the simulated teacher, then fine-tune on everything so far or (arm, arcs)
train a new model on it. Metric per round: the
share of queries in the gap and the smoothness of gap-crossing graph geodesics
(largest joint or pixel step over the mean step, 1 = even), over seeds.
"""
import contextlib
import time
from dataclasses import asdict

import numpy as np

from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.learning.evaluation import pendulum_evaluation_set
from latent_geodesics.learning.selection import evaluate, select_queries
from latent_geodesics.learning.teachers import ArmTeacher, Refused
from latent_geodesics.model.training import train_iwae
from latent_geodesics.sim.arcs import GAP, arc_pose, two_arcs
from latent_geodesics.sim.arcs import JOINT_NAMES as ARC_JOINTS
from latent_geodesics.sim.arm import (
    SKILL_AZIMUTHS,
    SKILL_GAP,
    SKILL_REACH,
    ArmSimulator,
    azimuth,
    inverse_kinematics,
    reach_targets,
    reaches,
    two_skills,
)
from latent_geodesics.sim.pendulum import pendulum_dataset, render, states_near

SELECTORS = ("combined", "mf", "uncertainty", "random")
HOLE = (0.8, 1.6)   # the pendulum's missing |angle| band, radians
TEMPLATE_ANGLES = np.linspace(-np.pi, np.pi, 721)


class PendulumImages:
    """Observations are rendered images; the teacher reads the angle off a queried
    image (template matching) and answers with images of rollouts through it."""
    name = "pendulum from images"
    unit = "pixel"
    epochs = 300   # images need longer than joint angles (angle read back: median 0.06 rad)

    def __init__(self, seed):
        states, _ = pendulum_dataset(n_rollouts=30, hole=HOLE, seed=seed)
        # Pixels the rod never reaches in the data carry nothing (and a constant
        # column is refused): the observation is the image without them.
        self.mask = render(states).std(0) > 1e-3
        self.data = self.observe(states)
        self.names = ["pixel_%d" % i for i in np.flatnonzero(self.mask)]
        pairs, held_out = pendulum_evaluation_set(seed=123)
        self.pairs = self.observe(pairs.reshape(-1, 2)).reshape(len(pairs), 2, -1)
        self.held_out = self.observe(held_out)
        self.templates = self.observe(np.c_[TEMPLATE_ANGLES, np.zeros_like(TEMPLATE_ANGLES)])
        self.rng = np.random.default_rng(seed)

    def observe(self, states):
        return render(states)[:, self.mask]

    def angle(self, images):
        """The angle a person reads off an image: the circular mean of the template
        angles that match it well. A blurred blend of two rods (what a decoder
        makes between data) reads as the angle between them."""
        match = np.atleast_2d(images) @ self.templates.T
        w = np.maximum(match - 0.5 * match.max(1, keepdims=True), 0)
        return np.arctan2(w @ np.sin(TEMPLATE_ANGLES), w @ np.cos(TEMPLATE_ANGLES))

    def in_gap(self, images):
        a = np.abs(self.angle(images))
        return (a >= HOLE[0]) & (a <= HOLE[1])

    def demonstrate(self, image):
        state = np.array([self.angle(image)[0], 0.0])
        return self.observe(states_near(state, n=10, seed=int(self.rng.integers(1 << 31))))


class ArmTwoSkills:
    """The arm's two skills: reaching the table on either side of a sector of
    azimuths that no demonstration enters (data.arm.two_skills). A query is in the
    gap when its fingertip's azimuth lies in that sector, 0.05 rad clear of both
    skills (ground truth from the arm's kinematics). Evaluation crosses the gap:
    goal poses of one skill paired with the other's."""
    name = "arm, two skills"
    unit = "joint"
    epochs = 100
    retrain = "scratch"

    def __init__(self, seed):
        arm = two_skills(n_demos=150, seed=seed)
        self.data, self.names = arm.data, arm.joint_names
        self.pairs, self.held_out = skill_crossing_set()
        self.teacher = ArmTeacher()

    def in_gap(self, q):
        a = azimuth(q)
        return (a > SKILL_GAP[0] + 0.05) & (a < SKILL_GAP[1] - 0.05)

    def demonstrate(self, q):
        return self.teacher.demonstrate(q)


def skill_crossing_set(n_pairs=6, n_held_out=40, seed=123):
    """Goal poses of the two skills near the gap, paired across it, and held-out
    motions over the whole sector, gap included: ((P, 2, 7), (M, 7))."""
    rng = np.random.default_rng(seed)
    sim = ArmSimulator()
    (lo, _), (_, hi) = SKILL_AZIMUTHS
    sides = []
    for a, b in ((SKILL_GAP[0] - 0.25, SKILL_GAP[0]), (SKILL_GAP[1], SKILL_GAP[1] + 0.2)):
        phi, r = rng.uniform(a, b, 3 * n_pairs), rng.uniform(*SKILL_REACH, 3 * n_pairs)
        goals, err = inverse_kinematics(reach_targets(phi, r, sim.workspace.target_z))
        sides.append(goals[(err < 0.01) & ~sim.workspace.in_collision(goals)][:n_pairs])
    demos = reaches(sim, (lo, hi), 2 * n_held_out, rng, start_noise=0.0, avoid=None)
    n = min(len(sides[0]), len(sides[1]))
    return np.stack([sides[0][:n], sides[1][:n]], 1), np.concatenate(demos[:n_held_out])


class TwoArcs:
    """One planar motion recorded on two arcs; the teacher shows 0.2 rad of the true
    motion (41 poses) through a query's phase, its first joint. A query is in the
    gap when that phase was never recorded. Models are retrained from scratch
    (fine-tuning keeps the gap's latent room small; see README)."""
    name = "two arcs"
    unit = "joint"
    epochs = 40
    retrain = "scratch"

    def __init__(self, seed):
        self.data, self.names = two_arcs(seed=seed), list(ARC_JOINTS)
        rng = np.random.default_rng(123)   # pairs across the gap, one pose on each arc
        phases = np.c_[rng.uniform(-1.1, -0.5, 6), rng.uniform(0.5, 1.1, 6)]
        self.pairs = arc_pose(phases)
        self.held_out = two_arcs(n=300, gap=0.0, seed=1000 + seed)

    def in_gap(self, q):
        return np.abs(np.atleast_2d(q)[:, 0]) < GAP

    def demonstrate(self, q):
        return arc_pose(q[0] + np.linspace(-0.1, 0.1, 41))


def run(world, model, selector, seed, rounds, queries, epochs):
    data = world.data
    history = []
    for rnd in range(rounds + 1):
        graph = LatentGraph(model, model.latents)
        row = {"round": rnd, "demonstrations": len(data) - len(world.data),
               **asdict(evaluate(model, graph, world.pairs, world.held_out))}
        if rnd == rounds:
            history.append(row)
            break
        q = select_queries(model, graph, queries, selector, seed=seed * 100 + rnd)
        row["in_gap"] = float(np.mean(world.in_gap(q.positions)))
        history.append(row)
        new = []
        for config in q.positions:
            with contextlib.suppress(Refused):   # the teacher's refusals are not data
                new.append(world.demonstrate(config))
        if new:
            data = np.concatenate([data] + new)
        if getattr(world, "retrain", "fine-tune") == "scratch":
            model, _ = train_iwae(data, world.names, seed=seed + rnd + 1, device="cpu",
                                  progress=False, epochs=world.epochs)
        else:
            model, _ = train_iwae(data, world.names, seed=seed, device="cpu",
                                  progress=False, init=model, epochs=epochs)
    return history


def gap_experiment(world_cls, seeds=(0, 1, 2, 3, 4), rounds=3, queries=6, epochs=30,
                   log=print):
    runs = {s: [] for s in SELECTORS}
    for seed in seeds:
        world = world_cls(seed)
        initial, _ = train_iwae(world.data, world.names, epochs=world.epochs, seed=seed,
                                device="cpu", progress=False)   # every selector starts here
        for selector in SELECTORS:
            start = time.perf_counter()
            runs[selector].append(run(world, initial, selector, seed, rounds, queries, epochs))
            h = runs[selector][-1]
            log("   %s seed %d %s: in gap %s, smoothness %s (%.0f s)" % (
                world.name, seed, selector, [round(r["in_gap"], 2) for r in h[:-1]],
                [round(r["smoothness"], 2) for r in h], time.perf_counter() - start))
    scratch = getattr(world_cls, "retrain", "fine-tune") == "scratch"
    return {"name": world.name, "unit": world.unit, "seeds": list(seeds), "rounds": rounds,
            "queries_per_round": queries, "runs": runs, "summary": summarise(runs),
            "epochs_per_round": world_cls.epochs if scratch else epochs,
            "retrain": "scratch" if scratch else "fine-tune"}


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
    # Whether random's own queries helped at all: where they did not, reaching its
    # final level only means active made the crossing smoother than it was.
    out["random_improved"] = bool(target < random["smoothness"][0])
    reached = [d for d, s in zip(active["demonstrations"][1:], active["smoothness"][1:])
               if s <= target]
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
    for key in ("gap_pendulum", "gap_arm", "gap_arcs"):
        if key not in results:
            continue
        r = results[key]
        s = r["summary"]
        training = ("%d epochs of training from scratch" if r.get("retrain") == "scratch"
                    else "%d fine-tuning epochs") % r["epochs_per_round"]
        md += ["### %s (%d seeds, %d rounds x %d queries, %s per round; figure %s.png)"
               % (r["name"], len(r["seeds"]), r["rounds"], r["queries_per_round"], training,
                  key), "",
               "| selector | queries in the gap | smoothness by round | %ss added |"
               % ("image" if r["unit"] == "pixel" else "pose"),
               "|---|---|---|---|"]
        for selector in SELECTORS:
            x = s[selector]
            md.append("| %s | %.2f ± %.2f | %s | %s |" % (
                selector, x["in_gap"], x["in_gap_sd"],
                " → ".join("%.2f" % v for v in x["smoothness"]),
                " → ".join("%.0f" % v for v in x["demonstrations"])))
        share = ("%.1fx" % s["in_gap_ratio"] if s["random"]["in_gap"] > 0 else
                 "%.2f against none" % s["combined"]["in_gap"])
        if s["demo_ratio"] is None:
            smooth = "active does not reach random's final smoothness within the budget"
        else:
            smooth = "active reaches random's final smoothness after %.0f added (ratio %.2f)" \
                % (s["active_demos_to_random_final"], s["demo_ratio"])
        if not s["random_improved"]:
            smooth += ("; random's own queries did not make the crossing smoother "
                       "(%.2f -> %.2f)" % (s["random"]["smoothness"][0],
                                           s["random"]["smoothness"][-1]))
        md += ["", "Active / random share in the gap: %s; %s." % (share, smooth), ""]
    return md


WORLDS = {"gap_pendulum": PendulumImages, "gap_arm": ArmTwoSkills, "gap_arcs": TwoArcs}


def _one_thread_each():
    import torch
    torch.set_num_threads(1)


def gap_experiments(results_dir, seeds=(0, 1, 2, 3, 4)):
    """The three experiments, one worker process each at a time (one thread each:
    small networks gain little from a second thread, and a second world does)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    workers = min(len(WORLDS), os.cpu_count() or 1)
    with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                             initializer=_one_thread_each) as pool:
        jobs = {key: pool.submit(gap_experiment, world, seeds) for key, world in WORLDS.items()}
        out = {key: job.result() for key, job in jobs.items()}
    for key, result in out.items():
        figure(result, os.path.join(results_dir, key + ".png"))
    return out


if __name__ == "__main__":
    import sys
    world = {"pendulum": PendulumImages, "arm": ArmTwoSkills, "arcs": TwoArcs}[sys.argv[1]]
    result = gap_experiment(world, seeds=tuple(range(int(sys.argv[2]) if len(sys.argv) > 2
                                                     else 1)))
    print("\n".join(report_lines({"gap_" + sys.argv[1]: result})))
