"""Riemannian geometry of a decoder's latent space (pullback of the Euclidean metric).

A decoder is any callable mapping a float tensor (B, Nz) to (B, Nx): an
nn.Module or a plain function. Points may be tensors or numpy arrays.

    curve_length(decoder, curve)        sum_i ||f(c_{i+1}) - f(c_i)||
    curve_energy(decoder, curve)        (n - 1) sum_i ||f(c_{i+1}) - f(c_i)||^2
    metric_tensor(decoder, z)           G = J^T J, (B, Nz, Nz)
    magnification_factor(decoder, z)    sqrt(det G), through 1/2 logdet
"""
import itertools
import threading
from typing import Callable, Union

import numpy as np
import torch
from torch.func import jacfwd, jacrev, vmap

Decoder = Callable[[torch.Tensor], torch.Tensor]   # (B, Nz) -> (B, Nx)
Points = Union[torch.Tensor, np.ndarray]          # (B, Nz) or (n, Nz)

CHUNK = 4096  # latent points per Jacobian batch: bounds memory for big grids
# torch.func transforms (vmap, jacfwd, jvp) are not thread-safe: concurrent calls
# (a ROS node serves each request in its own thread) corrupt each other's results.
FUNC_TRANSFORMS = threading.Lock()


def decoder_device_dtype(decoder):
    """Where and in which precision the decoder computes (CPU float64 for functions)."""
    decoder = getattr(decoder, "__self__", decoder)  # a bound method of a module
    if isinstance(decoder, torch.nn.Module):
        for tensor in itertools.chain(decoder.parameters(), decoder.buffers()):
            return tensor.device, tensor.dtype
    return torch.device("cpu"), None


def as_points(points, decoder):
    """Tensor on the decoder's device; numpy/lists become the decoder's dtype."""
    device, dtype = decoder_device_dtype(decoder)
    if isinstance(points, torch.Tensor):
        return points.to(device=device, dtype=dtype or points.dtype)
    return torch.as_tensor(np.asarray(points, dtype=np.float64), device=device,
                           dtype=dtype or torch.float64)


def decode(decoder, z, batch_size=65536):
    """Decode (..., Nz) points in batches; keeps gradients."""
    flat = z.reshape(-1, z.shape[-1])
    out = [decoder(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)]
    out = torch.cat(out) if out else flat.new_zeros(0, 0)
    return out.reshape(*z.shape[:-1], out.shape[-1])


def curve_length(decoder: Decoder, curve: Points) -> torch.Tensor:
    """Discretised Riemannian length: curve (n, Nz) -> scalar, (B, n, Nz) -> (B,)."""
    x = decode(decoder, as_points(curve, decoder))
    return (x[..., 1:, :] - x[..., :-1, :]).norm(dim=-1).sum(-1)


def curve_energy(decoder, curve):
    """Discretised energy (n - 1) sum ||dx||^2; minimisers are constant-speed geodesics."""
    x = decode(decoder, as_points(curve, decoder))
    n = x.shape[-2]
    return (n - 1) * ((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum(-1).sum(-1)


def jacobian(decoder, z):
    """Batched Jacobians J(z): (B, Nz) -> (B, Nx, Nz), chunked.

    torch.func vmap over jacfwd (cost ~ Nz) or jacrev (cost ~ Nx), whichever
    is cheaper; a decoder that vmap cannot trace falls back to autograd.
    """
    z = as_points(z, decoder)
    if len(z) == 0:
        raise ValueError("no latent points given")
    nx = decoder(z[:1]).shape[-1]
    single = lambda p: decoder(p[None])[0]  # noqa: E731
    jac = vmap(jacfwd(single) if z.shape[-1] <= nx else jacrev(single))
    # A decoder whose forward pass looks up numbers (e.g. nearest centres) says so:
    # under vmap it would take a slow exact path, under autograd its fast one.
    by_autograd = getattr(decoder, "jacobian_by_autograd", False)
    chunks = []
    for i in range(0, len(z), CHUNK):
        part = z[i:i + CHUNK]
        try:
            if by_autograd:
                raise NotImplementedError
            with FUNC_TRANSFORMS:
                chunks.append(jac(part))
        except Exception:  # not vmap-traceable (e.g. data-dependent control flow)
            summed = lambda p: decoder(p).sum(0)  # noqa: E731  rows are independent
            chunks.append(torch.autograd.functional.jacobian(
                summed, part, vectorize=True).permute(1, 0, 2))
    return torch.cat(chunks)


def metric_tensor(decoder: Decoder, z: Points) -> torch.Tensor:
    """G(z) = J(z)^T J(z): (B, Nz) -> (B, Nz, Nz)."""
    J = jacobian(decoder, z)
    return J.transpose(-1, -2) @ J


def log_magnification_factor(decoder, z):
    """1/2 logdet G(z) = sum_i log sigma_i(J): (B,), no under- or overflow."""
    sigma = torch.linalg.svdvals(jacobian(decoder, z))
    if sigma.shape[-1] < as_points(z, decoder).shape[-1]:
        return torch.full(sigma.shape[:1], -float("inf"), device=sigma.device)
    return torch.log(sigma).sum(-1)


def magnification_factor(decoder: Decoder, z: Points) -> torch.Tensor:
    """MF(z) = sqrt(det G(z)): (B, Nz) -> (B,)."""
    return log_magnification_factor(decoder, z).exp()


def interpolate(s, points, t):
    """Piecewise-linear interpolation of points at knots s (increasing) to values t."""
    idx = torch.searchsorted(s, t.clamp(0, 1), right=True).clamp(1, len(s) - 1)
    s0, s1 = s[idx - 1], s[idx]
    w = ((t - s0) / (s1 - s0).clamp_min(1e-12))[:, None]
    return points[idx - 1] + w * (points[idx] - points[idx - 1])
