"""Figures of a 2-D latent space: MF heatmap, data, paths.

Figures are built with matplotlib's object API (Figure + Agg canvas), not pyplot:
the server renders its MF map from service threads, and pyplot is not thread-safe.
"""
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .geometry import log_magnification_factor


def latent_bounds(latents, margin=0.15):
    lo, hi = latents.min(0), latents.max(0)
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def mf_grid(decoder, latents, resolution=128):
    """log MF over a grid covering the data: (extent, (res, res) array), one batch."""
    lo, hi = latent_bounds(latents)
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(lo[1], hi[1], resolution)
    grid = np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        log_mf = log_magnification_factor(decoder, grid).double().cpu().numpy()
    return (lo[0], hi[0], lo[1], hi[1]), log_mf.reshape(resolution, resolution)


def draw_latent(ax, decoder, latents, paths=(), title="", resolution=128, queries=None):
    """On ax: log MF heatmap, data points, labelled latent paths, query crosses."""
    extent, log_mf = mf_grid(decoder, latents, resolution)
    im = ax.imshow(log_mf, origin="lower", extent=extent, cmap="viridis", aspect="auto")
    ax.scatter(latents[:, 0], latents[:, 1], s=1, c="white", alpha=0.35, label="data")
    for label, points, style in paths:
        ax.plot(points[:, 0], points[:, 1], style, lw=2, label=label)
    if queries is not None:
        ax.scatter(queries[:, 0], queries[:, 1], marker="x", c="red", s=60, linewidths=2,
                   label="queries")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return im


def latent_figure(decoder, latents, paths=(), title="", resolution=128, queries=None):
    """Figure: log MF heatmap, data points, and labelled latent paths."""
    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = draw_latent(ax, decoder, latents, paths, title, resolution, queries)
    fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.tight_layout()
    return fig


def figure_rgb(fig):
    """Render a figure to an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
