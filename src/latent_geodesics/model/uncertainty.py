"""A decoder variance that grows away from the data (Arvanitidis et al., ICLR 2018,
"Latent space oddity"; Beik-Mohammadi et al., RSS 2021, for motion skills): an RBF
network for the decoder's precision,

    beta(z) = sum_k a_k exp(-lambda ||z - c_k||^2) + zeta,   sigma^2(z) = 1 / beta(z),

calibrated from the encoded data so that it follows a thin demonstrated motion:
- centres c_k: the encoded data itself (an even subsample beyond MAX_CENTRES), not a
  few k-means clusters, whose spread would cover the inside of a curved motion;
- one bandwidth from the data's spacing: lambda = 1 / (2 (BANDWIDTH h)^2), h the
  median distance from a centre to its SPACING_NEIGHBOUR-th nearest centre;
- heights a_k such that beta at each centre is the trained decoder's precision
  there (divided by the centres' overlap), so near the data sigma is what the
  decoder learned;
- a floor zeta = FLOOR x the smallest height: far from the data sigma grows to
  1 / sqrt(FLOOR) times the decoder's own, large against it.

sigma(d) grows like exp(d^2 / (4 (BANDWIDTH h)^2)) at a distance d from a line of
centres, so under G = J_mu^T J_mu + J_sigma^T J_sigma a path that cuts more than a
few spacings away from the demonstrations pays for the climb out and back, and a
path along them does not. Used by the metric every stage measures with (loading.
metric_decoder) and by the active learner's uncertainty score.
"""
import numpy as np
import torch
from scipy.spatial import cKDTree

from latent_geodesics.geometry.metric import as_points

FLOOR = 1e-3            # zeta relative to the smallest height: far-field sigma ~ 32 x
BANDWIDTH = 1.0         # in units of the data spacing h
SPACING_NEIGHBOUR = 4   # h: distance to this nearest centre (noise-robust, not the 1st)
MAX_CENTRES = 4096      # beyond, an even subsample of the data
NEAREST = 16            # centres summed per point (a k-nearest kernel sum) ...
CANDIDATES = 48         # ... found among this many nearest of its nearest centre
CHUNK = 8192            # query points per dense distance block (bounded memory)
FAR_FLOOR = 1e-12       # kernels below this x zeta in all: any centres give the floor


def under_func_transform(z):
    """Whether z is a torch.func transform's tensor (its values cannot be read)."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if check is not None:
        return check(z)
    try:
        z.detach().cpu().numpy()
        return False
    except RuntimeError:
        return True


def kth_smallest(d2, k):
    """torch.kthvalue(d2, k, dim=-1).values, the same numbers (differentiable): on the
    CPU found by numpy's sort, whose vectorised sort of short rows is several times
    faster than torch's selection (measured on (2000, 48) float32: 0.2 ms against
    1.3); the gradient flows through the entry holding that value."""
    if d2.device.type != "cpu" or d2.shape[-1] == 0:
        return d2.kthvalue(k, dim=-1).values
    value = torch.from_numpy(np.sort(d2.detach().numpy(), axis=-1)[:, k - 1])
    if not d2.requires_grad:
        return value
    at = (d2.detach() == value[:, None]).to(torch.uint8).argmax(-1, keepdim=True)
    return d2.gather(-1, at)[:, 0]


def square_distances(z, centres):
    """Squared distances (B, C) from points z (B, Nz) to their own centres (B, Nz, C):
    without gradients summed coordinate by coordinate in place, the same numbers in
    about a third of the time of the broadcast (B, Nz, C) difference's sum."""
    if torch.is_grad_enabled() and (z.requires_grad or centres.requires_grad):
        return ((z[:, :, None] - centres) ** 2).sum(1)
    out = (centres[:, 0] - z[:, :1]).square_()
    for d in range(1, z.shape[1]):
        out += (centres[:, d] - z[:, d:d + 1]).square_()
    return out


class RBFPrecision(torch.nn.Module):
    def __init__(self, latents, decoder_variance, max_centres=MAX_CENTRES):
        """latents (N, Nz); decoder_variance (N,) the learned variance at them
        (mean over joints, in units of each joint's data variance)."""
        super().__init__()
        latents = np.asarray(latents, dtype=np.float64)
        self.fitted_on = latents   # the encoded data it was fitted on
        variance = np.maximum(np.asarray(decoder_variance, dtype=np.float64), 1e-8)
        keep = np.unique(np.linspace(0, len(latents) - 1, min(len(latents), max_centres))
                         .astype(int))
        centres, variance = latents[keep], variance[keep]
        tree = cKDTree(centres)
        k = min(SPACING_NEIGHBOUR + 1, len(centres))
        distance, _ = tree.query(centres, k)
        spacing = float(np.median(np.atleast_2d(distance)[:, -1]))
        if not spacing > 0:   # all centres on one point: any positive scale
            spacing = 1e-3
        lam = 0.5 / (BANDWIDTH * spacing) ** 2
        near = np.exp(-lam * np.atleast_2d(tree.query(centres, min(NEAREST, len(centres)))[0])
                      .reshape(len(centres), -1) ** 2)
        overlap = np.maximum((near - near.min(-1, keepdims=True)).sum(-1), 1e-12)
        height = 1.0 / (variance * overlap)
        self.register_buffer("centres", torch.as_tensor(centres, dtype=torch.float32))
        self.register_buffer("height", torch.as_tensor(height, dtype=torch.float32))
        self.lam, self.spacing, self.tree = float(lam), spacing, tree
        count = min(CANDIDATES, len(centres))
        reach, near = tree.query(centres, count)
        near = np.reshape(near, (len(centres), -1))
        self.register_buffer("candidates", torch.as_tensor(near, dtype=torch.long))
        # Each centre's candidates' coordinates (C, Nz, CANDIDATES) and heights, laid out
        # for one row gather a point: no index-of-index lookups per request.
        self.register_buffer("candidate_centres", self.centres[self.candidates].transpose(1, 2)
                             .contiguous())
        self.register_buffer("candidate_height", self.height[self.candidates])
        self.zeta = float(FLOOR * height.min())
        # Each centre's candidates fill a ball of this radius around it (all centres:
        # an unbounded one); beyond far_d2 (squared distance to the nearest centre)
        # every kernel sum is below FAR_FLOOR x zeta whichever centres it takes.
        self.reach = np.reshape(reach, (len(centres), -1))[:, -1] if count < len(centres) \
            else np.full(len(centres), np.inf)
        self.far_d2 = np.log(NEAREST * float(height.max()) / (FAR_FLOOR * self.zeta)) / lam

    def precision(self, z):
        """beta(z) from each point's NEAREST centres (differentiable in z), as the dense
        path computes it. They are taken from the CANDIDATES nearest centres of its
        one nearest centre c (a k-d tree 1-NN lookup on the detached points, a
        fraction of a k-NN one) where that provably holds them: they lie within
        d + D of c (d = |z - c|, D the NEAREST-th candidate's distance, at least the
        true one), so inside c's candidate ball while d + D < reach. Elsewhere (just
        off a wide cloud of data) a k-NN lookup of the point's own, unless every
        kernel is negligible there (far_d2).
        Each kernel is lowered by the farthest one's, so a centre enters or leaves
        the sum at zero weight: beta stays continuous."""
        if under_func_transform(z):   # inside vmap/jacfwd: no numbers to look up
            return self._dense_precision(z)
        points = z.detach().cpu().numpy()
        workers = -1 if len(points) > 4096 else 1
        distance, nearest = self.tree.query(points, 1, workers=workers)
        rows = torch.as_tensor(nearest, device=z.device)
        d2 = square_distances(z, self.candidate_centres.to(z.dtype).index_select(0, rows))
        beta, kth = self._masked_sum(d2, self.candidate_height.to(z.dtype).index_select(0, rows))
        farthest = kth.detach().sqrt().cpu().double().numpy()
        unsure = ((distance + farthest) * (1 + 1e-6) >= self.reach[nearest]) \
            & (distance ** 2 < self.far_d2)   # 1e-6: the distances' rounding (float32)
        if unsure.any():
            rows = torch.as_tensor(np.flatnonzero(unsure), device=z.device)
            _, own = self.tree.query(points[unsure], min(NEAREST, len(self.centres)),
                                     workers=workers)
            own = torch.as_tensor(np.reshape(own, (len(rows), -1)), device=z.device)
            own_beta, _ = self._masked_sum(
                ((z[rows][:, None, :] - self.centres.to(z.dtype)[own]) ** 2).sum(-1),
                self.height.to(z.dtype)[own])
            beta = beta.index_put((rows,), own_beta)
        return beta

    def _masked_sum(self, d2, height):
        """(beta, the NEAREST-th smallest d2) from squared distances d2 (B, C) to C
        centres and their heights: the kernel sum over the NEAREST nearest, each kernel
        lowered by the farthest one's. A kernel beyond it is clipped to zero, as is one
        tied with it, so the kernels need no ordering and the sum is _kernel_sum's."""
        kth = kth_smallest(d2, min(NEAREST, d2.shape[1]))
        g = torch.exp(-self.lam * d2)
        lowered = (g - torch.exp(-self.lam * kth)[:, None]).clamp_min(0)
        return (height * lowered).sum(-1) + self.zeta, kth

    def _dense_precision(self, z):
        """The same from all centres' distances (for torch.func transforms)."""
        c = self.centres.to(z.dtype)
        k = min(NEAREST, len(c))
        out = []
        for i in range(0, len(z), CHUNK):
            d2 = ((z[i:i + CHUNK, None, :] - c) ** 2).sum(-1)
            d2, idx = torch.topk(d2, k, dim=-1, largest=False)
            out.append(self._kernel_sum(d2, self.height.to(z.dtype)[idx]))
        return torch.cat(out)

    def _kernel_sum(self, d2, height):
        """d2, height: (B, k), nearest first in the last column's sense (max = farthest)."""
        g = torch.exp(-self.lam * d2)
        return (height * (g - g.min(-1, keepdim=True).values)).sum(-1) + self.zeta

    def forward(self, z):
        """sigma(z): (B, Nz) -> (B,), in units of the data's standard deviation."""
        return self.precision(z.to(self.centres.dtype)).rsqrt().to(z.dtype)


@torch.no_grad()
def fit_rbf_precision(model, latents=None, max_centres=MAX_CENTRES):
    """The RBF precision of a model with a variance head (decode_std, x_std), fitted
    on encoded data: `latents`, by default the model's training data."""
    latents = np.asarray(model.latents if latents is None else latents, dtype=np.float64)
    z = as_points(latents, model)
    variance = ((model.decode_std(z) / model.x_std.to(z.dtype)) ** 2).mean(-1)
    rbf = RBFPrecision(latents, variance.double().cpu().numpy(), max_centres)
    return rbf.to(z.device)


class VarianceAwareDecoder(torch.nn.Module):
    """z -> (mu(z), ||x_std|| sigma(z)): its pullback metric is J_mu^T J_mu + J_sigma^T
    J_sigma for an isotropic sigma in data units, so every length, graph weight and
    refinement measured through it avoids regions without data."""
    jacobian_by_autograd = True   # geometry.jacobian: the k-d tree path, not vmap's dense one

    def __init__(self, model, rbf):
        super().__init__()
        self.model, self.rbf = model, rbf
        self.scale = float(model.x_std.norm())

    def forward(self, z):
        return torch.cat([self.model.decode(z), self.scale * self.rbf(z)[:, None]], -1)
