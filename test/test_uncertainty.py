"""RBFPrecision: the k-d tree fast path against the dense path it stands in for."""
import numpy as np
import pytest
import torch

from latent_geodesics.model.uncertainty import RBFPrecision, kth_smallest, square_distances

# Both paths sum the same NEAREST kernels, nearest first, when they pick the same
# centres: float64 results then agree to rounding (measured: bit for bit). Far from
# the data, where every kernel is below 1e-12 of the floor, any choice of centres
# gives the floor: 1e-9 relative covers both with room to spare, while a wrong choice
# of centres just off a band of data is off by far more (up to 70 % on the bands below).
AGREEMENT = 1e-9
SPACINGS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 1000.0)   # from a recorded point


def arc(n, dim, thickness, seed):
    """Latents along three quarters of a circle: a thin curve, or a band `thickness`
    wide that fills the plane locally (where nearest centres are not along a line)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1.5 * np.pi, n)
    z = np.zeros((n, dim))
    z[:, 0], z[:, 1] = np.cos(t), np.sin(t)
    return z + thickness * rng.normal(size=z.shape), rng.uniform(0.01, 0.1, n)


def queries(rbf, latents, seed, per_distance=1500):
    """Recorded points moved by SPACINGS x the fit's spacing in random directions."""
    rng = np.random.default_rng(seed)
    out = []
    for spacings in SPACINGS:
        base = latents[rng.integers(0, len(latents), per_distance)]
        step = rng.normal(size=base.shape)
        step *= spacings * rbf.spacing / np.linalg.norm(step, axis=1, keepdims=True)
        out.append(base + step)
    return np.vstack(out)


@pytest.mark.parametrize("dim,thickness", [(2, 0.0), (2, 0.02), (4, 0.02)],
                         ids=["curve", "band", "band-4d"])
def test_the_fast_path_equals_the_dense_path(dim, thickness):
    latents, variance = arc(3000, dim, thickness, seed=dim)
    rbf = RBFPrecision(latents, variance)
    z = torch.as_tensor(queries(rbf, latents, seed=1), dtype=torch.float64)
    fast, dense = rbf.precision(z), rbf._dense_precision(z)
    worst = ((fast - dense).abs() / dense).max().item()
    assert worst <= AGREEMENT, worst
    far = z[-1500:]   # 1000 spacings away: the floor, from either path
    assert torch.allclose(rbf.precision(far), torch.full((1500,), rbf.zeta, dtype=z.dtype),
                          rtol=AGREEMENT, atol=0)


def test_sigma_in_float32_as_served():
    """forward() computes in the centres' float32, as the served metric does: the same
    centres give the same float32 sums."""
    latents, variance = arc(3000, 2, 0.02, seed=2)
    rbf = RBFPrecision(latents, variance)
    z = torch.as_tensor(queries(rbf, latents, seed=3), dtype=torch.float32)
    dense = rbf._dense_precision(z).rsqrt()
    assert torch.allclose(rbf(z), dense, rtol=1e-6, atol=0)


def test_fewer_centres_than_candidates():
    """With every centre a candidate the fast path is the dense path everywhere."""
    latents, variance = arc(30, 2, 0.02, seed=4)
    rbf = RBFPrecision(latents, variance)
    z = torch.as_tensor(queries(rbf, latents, seed=5, per_distance=50), dtype=torch.float64)
    assert torch.allclose(rbf.precision(z), rbf._dense_precision(z), rtol=AGREEMENT, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kth_smallest_is_torch_kthvalue(dtype):
    """The numpy selection gives torch.kthvalue's numbers, ties included, and the
    gradient flows into the entry holding the k-th value, as kthvalue's does."""
    generator = torch.Generator().manual_seed(0)
    d2 = torch.rand(700, 48, dtype=dtype, generator=generator)
    d2[:, 7] = d2[:, 3]   # ties
    d2[::5, :20] = 0.5    # the k-th value tied many times
    for k in (1, 16, 48):
        assert torch.equal(kth_smallest(d2, k), d2.kthvalue(k, dim=-1).values)
    x = d2.clone().requires_grad_()
    weights = torch.rand(700, dtype=dtype, generator=generator)
    ours, = torch.autograd.grad((kth_smallest(x * 3, 16) * weights).sum(), x)
    theirs, = torch.autograd.grad(((x * 3).kthvalue(16, dim=-1).values * weights).sum(), x)
    assert torch.equal(ours.sum(-1), theirs.sum(-1)) and (ours != 0).sum() == 700
    assert torch.equal((ours * x.detach()).sum(-1), (theirs * x.detach()).sum(-1))


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_square_distances_are_the_broadcast_sum(dim):
    """Coordinate by coordinate in place (no gradients) or broadcast (gradients): the
    same numbers, and gradients where asked for."""
    generator = torch.Generator().manual_seed(dim)
    z = torch.rand(500, dim, generator=generator)
    centres = torch.rand(500, dim, 48, generator=generator)
    expected = ((z[:, :, None] - centres) ** 2).sum(1)
    with torch.no_grad():
        assert torch.equal(square_distances(z, centres), expected)
    z.requires_grad_()
    got = square_distances(z, centres)
    grad, = torch.autograd.grad(got.sum(), z)
    assert torch.allclose(grad, 2 * (z[:, :, None] - centres).sum(-1).detach(), rtol=1e-5)
