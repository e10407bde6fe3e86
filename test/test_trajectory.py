"""Trajectory timing: velocity and acceleration limits."""
import numpy as np
import pytest

from latent_geodesics.trajectory import time_parametrize


def path(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.05, (n, 3)), axis=0)


def test_velocity_limit_and_increasing_times():
    q = path()
    t = time_parametrize(q, max_velocity=0.5)
    assert t[0] == 0.0 and (np.diff(t) > 0).all()
    v = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
    assert v.max() <= 0.5 + 1e-12
    assert v.max() == pytest.approx(0.5)          # as fast as allowed


def test_acceleration_limit():
    q = path()
    t = time_parametrize(q, max_velocity=0.5, max_acceleration=0.3)
    dt = np.diff(t)
    v = np.vstack([np.zeros(3), np.diff(q, axis=0) / dt[:, None], np.zeros(3)])
    span = np.r_[dt[0], (dt[:-1] + dt[1:]) / 2, dt[-1]]
    assert (np.abs(np.diff(v, axis=0)).max(axis=1) / span).max() <= 0.3 * (1 + 1e-6)
    assert t[-1] > time_parametrize(q, max_velocity=0.5)[-1]


def test_bad_arguments():
    with pytest.raises(ValueError):
        time_parametrize(np.zeros((1, 3)), 1.0)
    with pytest.raises(ValueError):
        time_parametrize(path(), 0.0)
