"""Choosing evaluation pairs: poses whose straight latent line crosses a data hole."""
import numpy as np
from scipy.spatial import cKDTree


def hole_crossing_pairs(latents, n_pairs=3, seed=0, candidates=600, min_separation=0.3):
    """Index pairs of data points whose straight latent line passes farthest from
    the data (the largest gap along it), spread out: no two pairs share an
    endpoint neighbourhood of radius min_separation."""
    rng = np.random.default_rng(seed)
    tree = cKDTree(latents)
    pairs = rng.choice(len(latents), (candidates, 2))
    t = np.linspace(0, 1, 40)[:, None]
    gaps = np.array([tree.query(latents[i] + t * (latents[j] - latents[i]))[0].max()
                     for i, j in pairs])
    chosen = []
    for k in np.argsort(gaps)[::-1]:
        i, j = pairs[k]
        if all(min(np.linalg.norm(latents[i] - latents[a]), np.linalg.norm(latents[j] - latents[b]))
               > min_separation for a, b in chosen):
            chosen.append((int(i), int(j)))
        if len(chosen) == n_pairs:
            break
    return chosen
