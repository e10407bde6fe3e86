"""A decoder variance that grows away from the data (Arvanitidis et al., ICLR 2018,
"Latent space oddity"): an RBF network for the decoder's precision,

    beta(z) = sum_k a_k exp(-lambda_k ||z - c_k||^2) + zeta,   sigma^2(z) = 1 / beta(z),

centres c_k by k-means of the encoded data, bandwidths from each cluster's
spread, heights a_k = the inverse of the trained decoder's variance there, and a
small floor zeta: near the data sigma is what the decoder learned, far from it
sigma grows to 1 / sqrt(zeta) (in units of the data's standard deviation). The
learned variance head alone cannot do this: a network extrapolates anything.

Used by the active learner's uncertainty score and, behind the server's
`metric` parameter, by the metric G = J_mu^T J_mu + J_sigma^T J_sigma, so that
geodesics avoid regions without data.
"""
import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from .geometry import as_points

FLOOR = 1e-3          # zeta relative to the smallest height
BANDWIDTH = 1.25      # lambda_k = 0.5 / (BANDWIDTH * cluster spread)^2, as in the paper


class RBFPrecision(torch.nn.Module):
    def __init__(self, latents, decoder_variance, n_centres=64, seed=0):
        """latents (N, Nz); decoder_variance (N,) the learned variance at them
        (mean over joints, in units of each joint's data variance)."""
        super().__init__()
        latents = np.asarray(latents, dtype=np.float64)
        k = int(min(n_centres, max(1, len(latents) // 4)))
        rng = np.random.default_rng(seed)
        centres, labels = kmeans2(latents, latents[rng.choice(len(latents), k, replace=False)],
                                  minit="matrix", iter=20)
        spread, height = np.empty(k), np.empty(k)
        overall = np.sqrt(((latents - latents.mean(0)) ** 2).sum(1).mean()) / np.sqrt(k)
        for c in range(k):
            members = labels == c
            if members.sum() >= 2:
                spread[c] = np.sqrt(((latents[members] - centres[c]) ** 2).sum(1).mean())
                height[c] = 1.0 / max(float(np.mean(decoder_variance[members])), 1e-8)
            else:
                spread[c], height[c] = overall, 1.0 / max(float(np.mean(decoder_variance)), 1e-8)
        spread = np.maximum(spread, 1e-3 * overall + 1e-12)
        self.register_buffer("centres", torch.as_tensor(centres, dtype=torch.float32))
        self.register_buffer("lam", torch.as_tensor(0.5 / (BANDWIDTH * spread) ** 2,
                                                    dtype=torch.float32))
        self.register_buffer("height", torch.as_tensor(height, dtype=torch.float32))
        self.zeta = float(FLOOR * height.min())

    def precision(self, z):
        d2 = ((z[:, None, :] - self.centres.to(z.dtype)) ** 2).sum(-1)
        return (self.height.to(z.dtype) * torch.exp(-self.lam.to(z.dtype) * d2)).sum(-1) \
            + self.zeta

    def forward(self, z):
        """sigma(z): (B, Nz) -> (B,), in units of the data's standard deviation."""
        return self.precision(z.to(self.centres.dtype)).rsqrt().to(z.dtype)


@torch.no_grad()
def fit_rbf_precision(model, latents=None, n_centres=64, seed=0):
    """The RBF precision of a model with a variance head (decode_std, x_std), fitted
    on encoded data: `latents`, by default the model's training data."""
    latents = np.asarray(model.latents if latents is None else latents, dtype=np.float64)
    z = as_points(latents, model)
    variance = ((model.decode_std(z) / model.x_std.to(z.dtype)) ** 2).mean(-1)
    rbf = RBFPrecision(latents, variance.double().cpu().numpy(), n_centres, seed)
    return rbf.to(z.device)


class VarianceAwareDecoder(torch.nn.Module):
    """z -> (mu(z), ||x_std|| sigma(z)): its pullback metric is J_mu^T J_mu + J_sigma^T
    J_sigma for an isotropic sigma in data units, so every length, graph weight and
    refinement measured through it avoids regions without data."""

    def __init__(self, model, rbf):
        super().__init__()
        self.model, self.rbf = model, rbf
        self.scale = float(model.x_std.norm())

    def forward(self, z):
        return torch.cat([self.model.decode(z), self.scale * self.rbf(z)[:, None]], -1)
