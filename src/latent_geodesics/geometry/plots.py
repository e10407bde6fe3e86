"""Figures of a latent space: MF heatmap, data, paths.

A latent space of more than two dimensions is shown on the plane through the
data's mean spanned by its two principal directions: points are projected onto
it, and the MF heatmap is a slice, the decoder evaluated on that plane.

Figures are built with matplotlib's object API (Figure + Agg canvas), not pyplot:
the server renders its MF map from service threads, and pyplot is not thread-safe.
"""
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from latent_geodesics.geometry.metric import log_magnification_factor


def latent_bounds(latents, margin=0.15):
    lo, hi = latents.min(0), latents.max(0)
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


class Plane:
    """The plane a figure shows: the latent space itself when it is 2-D, else the
    plane through the data's mean along its two principal directions."""

    def __init__(self, latents):
        latents = np.asarray(latents, dtype=np.float64)
        self.dim = latents.shape[1]
        if self.dim == 2:
            self.origin, self.basis = np.zeros(2), np.eye(2)
        else:
            self.origin = latents.mean(0)
            self.basis = np.linalg.svd(latents - self.origin, full_matrices=False)[2][:2]
        self.labels = ("z1", "z2") if self.dim == 2 else \
            ("principal direction 1", "principal direction 2")

    def project(self, points):
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.basis.T

    def lift(self, coords):
        return self.origin + np.asarray(coords) @ self.basis


def mf_grid(decoder, latents, resolution=128, extra=(), plane=None):
    """log MF over a grid covering the data and any `extra` points, on `plane`
    (a slice of a higher-dimensional space): (extent, (res, res) array), one batch."""
    plane = plane or Plane(latents)
    lo, hi = latent_bounds(np.vstack([plane.project(latents)]
                                     + [plane.project(e) for e in extra]))
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(lo[1], hi[1], resolution)
    grid = np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        log_mf = log_magnification_factor(decoder, plane.lift(grid)).double().cpu().numpy()
    return (lo[0], hi[0], lo[1], hi[1]), log_mf.reshape(resolution, resolution)


def draw_latent(ax, decoder, latents, paths=(), title="", resolution=128, queries=None,
                marks=(), legend=True):
    """On ax: log MF heatmap (covering everything drawn), data points, labelled
    latent paths with start (o) and goal (*) markers, query crosses, and other
    labelled point sets `marks` [(label, points, marker style)]."""
    plane = Plane(latents)
    extra = [p for _, p, _ in paths] + [p for _, p, _ in marks if len(p)]
    if queries is not None:
        extra.append(queries)
    extent, log_mf = mf_grid(decoder, latents, resolution, extra, plane)
    im = ax.imshow(log_mf, origin="lower", extent=extent, cmap="viridis", aspect="auto")
    data = plane.project(latents)
    ax.scatter(data[:, 0], data[:, 1], s=3, c="white", edgecolors="none", alpha=0.7,
               label="data (encoded poses)")
    for label, points, style in paths:
        points = plane.project(points)
        line, = ax.plot(points[:, 0], points[:, 1], style, lw=2, label=label)
        ax.plot(*points[0], "o", color=line.get_color(), ms=6, mec="k")
        ax.plot(*points[-1], "*", color=line.get_color(), ms=11, mec="k")
    for label, points, style in marks:
        points = plane.project(np.reshape(points, (-1, plane.dim)))
        ax.plot(points[:, 0], points[:, 1], style, ms=7, mew=2, label=label, ls="none")
    if queries is not None:
        queries = plane.project(queries)
        ax.scatter(queries[:, 0], queries[:, 1], marker="x", c="red", s=60, linewidths=2,
                   label="queries")
    ax.set_xlim(extent[0], extent[1])   # the heatmap fills the axes: no blank band
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(plane.labels[0])
    ax.set_ylabel(plane.labels[1])
    if plane.dim > 2:
        title = (title + "\n" if title else "") + "(%d-D latent space: the plane through the " \
            "data's mean along its principal directions; MF on that slice)" % plane.dim
    ax.set_title(title)
    if legend:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    return im


def latent_figure(decoder, latents, paths=(), title="", resolution=128, queries=None,
                  marks=(), size=(6, 5)):
    """Figure: log MF heatmap, data points, and labelled latent paths."""
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = draw_latent(ax, decoder, latents, paths, title, resolution, queries, marks)
    fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.tight_layout()
    return fig


def figure_rgb(fig):
    """Render a figure to an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
