"""Geometry against closed-form answers."""
import numpy as np
import pytest
import torch
from decoders import A, great_circle, linear, sphere

from latent_geodesics.geometry.metric import (
    curve_energy,
    curve_length,
    log_magnification_factor,
    magnification_factor,
    metric_tensor,
)


def test_linear_decoder_length_and_energy_are_exact():
    a, b = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    line = np.linspace(a, b, 11)
    exact = float(np.linalg.norm(A.numpy() @ (b - a)))
    assert float(curve_length(linear, line)) == pytest.approx(exact, rel=1e-12)
    # Constant speed: energy = length^2.
    assert float(curve_energy(linear, line)) == pytest.approx(exact ** 2, rel=1e-12)


def test_batch_of_curves():
    curves = torch.stack([torch.linspace(0, 1, 5)[:, None].repeat(1, 2) * s
                          for s in (1.0, 2.0)]).double()
    lengths = curve_length(linear, curves)
    assert lengths.shape == (2,) and lengths[1] == pytest.approx(2 * lengths[0])


def test_metric_tensor_of_linear_decoder():
    z = torch.randn(7, 2, dtype=torch.float64)
    G = metric_tensor(linear, z)
    assert G.shape == (7, 2, 2)
    assert torch.allclose(G, (A.T @ A).expand(7, 2, 2))


def test_magnification_factor_linear_and_sphere():
    z = torch.tensor([[0.0, 0.0], [0.3, 1.0], [-1.0, -0.5]], dtype=torch.float64)
    expected_linear = torch.sqrt(torch.det(A.T @ A))
    assert torch.allclose(magnification_factor(linear, z), expected_linear.expand(3))
    # (lon, lat) chart of the sphere: sqrt(det G) = cos(latitude).
    assert torch.allclose(magnification_factor(sphere, z), torch.cos(z[:, 1]))


def test_log_magnification_factor_does_not_overflow():
    big = lambda z: 1e200 * torch.cat([z, z], -1)  # noqa: E731  det G ~ 1e800
    log_mf = log_magnification_factor(big, torch.zeros(2, 2, dtype=torch.float64))
    assert torch.isfinite(log_mf).all()
    assert log_mf[0].item() == pytest.approx(2 * np.log(1e200) + np.log(2), rel=1e-9)


def test_grid_is_one_batched_call_and_matches_pointwise():
    calls = []

    def counting(z):
        calls.append(z.shape)
        return sphere(z)

    g = torch.linspace(-1, 1, 256, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    mf = magnification_factor(counting, grid)
    assert mf.shape == (65536,)
    assert len(calls) <= 1 + 65536 // 4096   # traced per chunk, never per point
    assert torch.allclose(mf, torch.cos(grid[:, 1]))


def test_any_callable_and_numpy_input(arm_model):
    z = np.zeros((4, 2))
    assert metric_tensor(arm_model, z).shape == (4, 2, 2)
    assert metric_tensor(arm_model.decode, z).shape == (4, 2, 2)
    assert magnification_factor(arm_model, z).shape == (4,)
    assert float(curve_length(arm_model, np.linspace([0, 0], [1, 1], 5))) > 0


def test_non_vmappable_decoder_falls_back_to_autograd():
    def branching(z):
        if z.detach().sum().item() > 1e9:  # data-dependent control flow: not vmap-traceable
            return z
        return linear(z)
    G = metric_tensor(branching, torch.zeros(3, 2, dtype=torch.float64))
    assert torch.allclose(G, (A.T @ A).expand(3, 2, 2))


def test_great_circle_helper():
    assert great_circle([0, 0], [np.pi / 2, 0]) == pytest.approx(np.pi / 2)


def test_jacobians_are_right_under_concurrent_calls(arm_model):
    """Each ROS request runs in its own thread; torch.func must not mix them up."""
    import threading
    z = torch.as_tensor(arm_model.latents[:5])
    reference = [log_magnification_factor(arm_model, z[i:i + 1]).item() for i in range(5)]
    wrong = []

    def worker(k):
        for c in range(60):
            i = (k + c) % 5
            value = log_magnification_factor(arm_model, z[i:i + 1]).item()
            if abs(value - reference[i]) > 1e-5:
                wrong.append((i, value))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
