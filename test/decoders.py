"""Decoders whose geometry is known in closed form."""
import numpy as np
import torch

A = torch.tensor([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64)


def linear(z):
    """x = A z: straight lines are geodesics, G = A^T A everywhere."""
    return z @ A.T.to(z.dtype)


def sphere(z):
    """(longitude, latitude) -> the unit sphere: distances are great circles."""
    lon, lat = z[:, 0], z[:, 1]
    return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon),
                        torch.sin(lat)], -1)


def great_circle(a, b):
    pa = sphere(torch.as_tensor(np.asarray(a, dtype=np.float64))[None])[0].numpy()
    pb = sphere(torch.as_tensor(np.asarray(b, dtype=np.float64))[None])[0].numpy()
    return float(np.arccos(np.clip(pa @ pb, -1, 1)))


def sphere_nodes(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-1.5, 1.5, n), rng.uniform(-1.2, 1.2, n)]
