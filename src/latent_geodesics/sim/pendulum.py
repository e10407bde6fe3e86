"""A simulated damped pendulum, the second example of the active-learning paper.

States are (angle, angular velocity); observations are either those states or
small rendered images of the rod. Ranges of angle can be left out (a hole).
"""
import numpy as np

JOINT_NAMES = ["angle", "angular_velocity"]


def simulate(theta0, omega0, steps=100, dt=0.05, gravity=9.81, length=1.0, damping=0.1):
    """Semi-implicit Euler rollouts, batched over initial states: (B, steps, 2)."""
    theta, omega = np.array(theta0, dtype=float), np.array(omega0, dtype=float)
    out = np.empty(theta.shape + (steps, 2))
    for i in range(steps):
        out[..., i, 0], out[..., i, 1] = theta, omega
        omega = omega + dt * (-gravity / length * np.sin(theta) - damping * omega)
        theta = theta + dt * omega
    return out


def pendulum_dataset(n_rollouts=40, steps=100, hole=(0.8, 1.6), seed=0):
    """States (N, 2) of rollouts, with |angle| in `hole` removed (None keeps all)."""
    rng = np.random.default_rng(seed)
    states = simulate(rng.uniform(-2.5, 2.5, n_rollouts), rng.uniform(-1, 1, n_rollouts),
                      steps).reshape(-1, 2)
    if hole is not None:
        states = states[~((np.abs(states[:, 0]) >= hole[0]) & (np.abs(states[:, 0]) <= hole[1]))]
    return states, list(JOINT_NAMES)


def states_near(query, n=20, radius=0.1, seed=0):
    """True states of the rollout through (about) a query state: the demonstrator's answer."""
    rng = np.random.default_rng(seed)
    theta0 = query[0] + rng.normal(0, radius, n)
    omega0 = query[1] + rng.normal(0, radius, n)
    return simulate(theta0, omega0, steps=5).reshape(-1, 2)


def render(states, size=16):
    """Images (N, size*size) in [0, 1]: a rod from the centre at the state's angle."""
    theta = np.asarray(states)[:, 0]
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(-grid, grid, indexing="ij")
    tip = np.stack([np.sin(theta), -np.cos(theta)], -1) * 0.85
    s = np.clip((xx[None] * tip[:, None, None, 0] + yy[None] * tip[:, None, None, 1])
                / (tip ** 2).sum(-1)[:, None, None], 0, 1)
    dist = np.hypot(xx[None] - s * tip[:, None, None, 0], yy[None] - s * tip[:, None, None, 1])
    return np.exp(-(dist / 0.12) ** 2).reshape(len(theta), -1)
