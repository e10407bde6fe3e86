"""Choosing evaluation pairs: poses whose straight latent line crosses a data hole."""
import numpy as np
from scipy.spatial import cKDTree


def hole_crossing_pairs(latents, n_pairs=3, seed=0, candidates=600, min_separation=0.3):
    """Index pairs of data points whose straight latent line passes farthest from
    the data (the largest gap along it), spread out: no two pairs share an
    endpoint neighbourhood of radius min_separation."""
    rng = np.random.default_rng(seed)
    tree = cKDTree(latents)
    pairs = rng.choice(len(latents), (candidates, 2))
    t = np.linspace(0, 1, 40)[:, None]
    gaps = np.array([tree.query(latents[i] + t * (latents[j] - latents[i]))[0].max()
                     for i, j in pairs])
    chosen = []
    for k in np.argsort(gaps)[::-1]:
        i, j = pairs[k]
        if all(min(np.linalg.norm(latents[i] - latents[a]), np.linalg.norm(latents[j] - latents[b]))
               > min_separation for a, b in chosen):
            chosen.append((int(i), int(j)))
        if len(chosen) == n_pairs:
            break
    return chosen


def arm_goal_poses(n_demos, seed, margin=0.03):
    """Goal configurations of held-out arm demonstrations (no hole), split by where the
    target lies: (inside the hole band, left of it, right of it, the demonstrations)."""
    from latent_geodesics.sim.arm import ArmSimulator, fingertip
    sim = ArmSimulator()
    full = sim.dataset(n_demos=n_demos, hole=False, seed=seed)
    goals = np.stack([d[-1] for d in full.demos])
    y = fingertip(goals).numpy()[:, 1]
    lo, hi = sim.workspace.hole_y
    return (goals[(y > lo) & (y < hi)], goals[y < lo - margin], goals[y > hi + margin],
            full.demos)


def arm_evaluation_set(n_pairs=6, n_held_out=40, seed=123):
    """Held-out pose pairs on either side of the arm's data hole, and held-out poses
    covering the whole table (hole included): ((P, 2, 7), (M, 7))."""
    _, left, right, demos = arm_goal_poses(n_held_out + 4 * n_pairs, seed)
    n = min(n_pairs, len(left), len(right))
    pairs = np.stack([np.stack([left[i], right[i]]) for i in range(n)])
    return pairs, np.concatenate(demos[:n_held_out])


def pendulum_evaluation_set(n_pairs=6, seed=123):
    """Pendulum states on either side of the angular hole, and held-out states."""
    from latent_geodesics.sim.pendulum import pendulum_dataset
    states, _ = pendulum_dataset(n_rollouts=20, hole=None, seed=seed)
    below = states[(states[:, 0] > 0.4) & (states[:, 0] < 0.7)]
    above = states[(states[:, 0] > 1.7) & (states[:, 0] < 2.0)]
    n = min(n_pairs, len(below), len(above))
    return np.stack([np.stack([below[i], above[i]]) for i in range(n)]), states[::4]


EVALUATION_SETS = {"arm": arm_evaluation_set, "pendulum": pendulum_evaluation_set}


def data_evaluation_set(model, data, n_pairs=6, n_held_out=400, seed=0):
    """Evaluation from the data alone, for any robot: pose pairs whose straight latent
    line (under the initial model) crosses the largest gaps in the data, and a
    fixed subset of the poses: ((P, 2, Nx), (M, Nx))."""
    data = np.asarray(data, dtype=np.float64)
    pairs = hole_crossing_pairs(model.latents[:len(data)], n_pairs=n_pairs, seed=seed)
    rng = np.random.default_rng(seed)
    held_out = data[rng.choice(len(data), min(n_held_out, len(data)), replace=False)]
    return np.stack([np.stack([data[i], data[j]]) for i, j in pairs]), held_out
