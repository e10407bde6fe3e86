"""Figures of latent spaces of any dimension."""
import numpy as np
import torch

from latent_geodesics.geometry.plots import Plane, figure_rgb, latent_figure, mf_grid


def test_a_3d_latent_space_is_shown_on_its_principal_plane():
    rng = np.random.default_rng(0)
    # Data on a tilted plane of a 3-D space: the plane must be found, and an MF slice
    # through it evaluated at 3-D points.
    coords = rng.normal(size=(300, 2))
    tilt = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]) / np.sqrt([[2.0], [2.0]])
    latents = coords @ tilt + np.array([1.0, 2.0, 3.0])
    plane = Plane(latents)
    assert np.allclose(plane.lift(plane.project(latents)), latents)   # on the plane: exact
    seen = []

    def decoder(z):
        seen.append(z.shape[-1])
        return torch.cat([z, z.sum(-1, keepdim=True) ** 2], -1)
    extent, log_mf = mf_grid(decoder, latents, resolution=8, plane=plane)
    assert log_mf.shape == (8, 8) and np.isfinite(log_mf).all() and set(seen) == {3}
    path = latents[[0, 5, 9]]
    rgb = figure_rgb(latent_figure(decoder, latents, [("a path", path, "-")], "t", 8))
    assert rgb.ndim == 3 and rgb.shape[2] == 3


def test_a_2d_latent_space_is_drawn_as_it_is():
    plane = Plane(np.random.default_rng(1).normal(size=(50, 2)))
    assert np.array_equal(plane.project([[0.3, -0.2]]), [[0.3, -0.2]])
    assert plane.labels == ("z1", "z2")
