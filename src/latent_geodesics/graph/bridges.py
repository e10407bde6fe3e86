"""Bridging a kNN graph's components into one: a Boruvka forest over the
components, each bridge the shortest measured of its component's candidate pairs
(the encoder may put a gap's two ends far apart while other parts lie close)."""
import numpy as np
from scipy.spatial import cKDTree

MIN_WEIGHT = 1e-12   # csgraph drops zero weights; duplicate nodes still connect
BRIDGE_CANDIDATES = 4   # x k neighbours searched for a cross-component pair first
# With few components (separate skills, gaps between them) each one's bridge is the
# Riemannian-shortest of up to BRIDGE_TRIALS measured pairs, not the latent-nearest.
FEW_COMPONENTS = 16
BRIDGE_TRIALS = 256
BRIDGE_CAP = 512   # most pieces a bridge is measured in (graph_files measures it again)


def connect(graph):
    """Bridge the kNN graph's components into one (Boruvka over components, each
    bridge the shortest measured of its component's candidate pairs)."""
    if graph.n_components == 1:
        return
    n = len(graph.nodes)
    _, near = graph.tree.query(graph.nodes, min(n, BRIDGE_CANDIDATES * graph.k + 1))
    while graph.n_components > 1:
        labels = graph.components
        cross = labels[near] != labels[:, None]
        first = near[np.arange(n), cross.argmax(1)]
        dist = np.where(cross.any(1), np.linalg.norm(graph.nodes[first] - graph.nodes, axis=1),
                        np.inf)
        trials = np.array([t for c in range(graph.n_components)
                           for t in _bridge_trials(graph, labels, c, dist, first)],
                          dtype=np.int64)
        weights = np.maximum(graph.metric.segment_lengths(graph.nodes[trials[:, 0]],
                                                          graph.nodes[trials[:, 1]],
                                                          graph.step, cap=BRIDGE_CAP),
                             MIN_WEIGHT)
        pairs, kept = _forest(labels, trials, weights)
        graph._set_edges(np.vstack([graph.edges, pairs]), np.r_[graph.weights, kept],
                        np.r_[graph.is_bridge, np.ones(len(pairs), bool)])


def _bridge_trials(graph, labels, c, dist, first):
    """Candidate (member of c, node outside c) pairs for component c's bridge: the
    latent-nearest pair; with few components also up to BRIDGE_TRIALS members,
    spread over the component, each with its nearest outside node."""
    members = np.flatnonzero(labels == c)
    i = members[np.argmin(dist[members])]
    found = np.isfinite(dist[i])
    if found and graph.n_components > FEW_COMPONENTS:
        return [(i, first[i])]
    others = np.flatnonzero(labels != c)
    outside = cKDTree(graph.nodes[others])
    spread = members[np.unique(np.linspace(0, len(members) - 1, BRIDGE_TRIALS).astype(int))]
    if found:
        trials = [(i, first[i])]
    else:   # every near neighbour is inside: the latent-nearest pair, exactly
        d, j = outside.query(graph.nodes[members])
        trials = [(members[np.argmin(d)], others[j[np.argmin(d)]])]
    return trials + list(zip(spread, others[outside.query(graph.nodes[spread])[1]]))


def _forest(labels, trials, weights):
    """Each component's shortest trial, kept only where it joins two groups not
    joined yet (shortest first), so the bridges form a forest."""
    best = {}
    for (a, b), w in zip(trials, weights):
        c = labels[a]
        if c not in best or w < best[c][0]:
            best[c] = (w, min(a, b), max(a, b))
    group = {c: c for c in np.unique(labels)}

    def root(c):
        while group[c] != c:
            c = group[c]
        return c
    pairs, kept = [], []
    for w, a, b in sorted(set(best.values())):
        ra, rb = root(labels[a]), root(labels[b])
        if ra != rb:
            group[ra] = rb
            pairs.append((a, b))
            kept.append(w)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(kept)
