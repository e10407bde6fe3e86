"""The graph's edges in one scene, checked lazily (Lazy PRM, Bohlin & Kavraki 2000):
an edge is decoded and checked the first time a request's path uses it, once per
scene, and every later request in that scene leaves out the edges found too near.
~geodesic_lengths asks for every edge at once (all_bounds)."""
import threading

import numpy as np

from latent_geodesics.geometry.metric import segment_pieces

EDGE_CHECK_PIECES = 8   # samples per edge checked (the graph's own measure uses as many)
EDGE_BATCH = 4096       # edges decoded and checked at once


class SceneEdges:
    def __init__(self, world, chord_allowance):
        """world: the PathWorld (its served graph, body, checker, node clearances and
        decode); chord_allowance: m by which an edge's chord must keep the padding
        for the edge to pass undecoded."""
        self.world, self.chord_allowance = world, chord_allowance
        self.graph = world.served.graph
        # each edge's clearance bound once a path has used it (NaN: not checked yet)
        self._checked = np.full(len(self.graph.edges), np.nan)
        self._all = None
        self._keys = None
        self._lock = threading.Lock()

    def near(self, node_path, margin):
        """(K, 2) node pairs of consecutive nodes of node_path whose edge's decoded
        motion comes nearer than margin to an object, each edge checked once."""
        pairs = np.c_[node_path[:-1], node_path[1:]].astype(np.int64)
        rows = self.rows(pairs)
        with self._lock:
            new = np.unique(rows[np.isnan(self._checked[rows])])
            if len(new):
                self._checked[new] = self.bounds(new)
            return pairs[self._checked[rows] < margin]

    def found_nearer(self, margin):
        """(E,) bool: the edges already checked and found nearer than margin."""
        with self._lock:
            return self._checked < margin   # NaN (not checked yet): False

    def all_bounds(self):
        """(E,) bounds() of every graph edge, once per scene."""
        with self._lock:
            if self._all is None:
                self._all = self.bounds(np.arange(len(self.graph.edges)))
            return self._all

    def rows(self, pairs):
        """Rows of the graph's edges array of node pairs (either order)."""
        edges, n = self.graph.edges, len(self.graph.nodes)
        if self._keys is None:
            keys = edges.min(axis=1).astype(np.int64) * n + edges.max(axis=1)
            order = np.argsort(keys)
            self._keys = (keys[order], order)
        keys, order = self._keys
        wanted = pairs.min(axis=1) * n + pairs.max(axis=1)
        return order[np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)]

    def bounds(self, edges):
        """(len(edges),) a lower bound of each edge's clearance (rows of the graph's
        edges), +inf where the bound along its chord keeps collision_padding (the
        largest margin a request plans with) without decoding: along the chord
        between two configurations of clearances c_i, c_j no body point moves more
        than b (the body's motion bound), so the clearance stays above
        (c_i + c_j - b)/2; the others decoded and checked (decoded_bounds)."""
        world = self.world
        i, j = self.graph.edges[edges, 0], self.graph.edges[edges, 1]
        c = world.node_clearance
        b = world.body.motion_bound(world.node_q[j] - world.node_q[i])
        chord = (c[i] + c[j] - b) / 2
        suspect = np.flatnonzero(chord < world.settings.padding + self.chord_allowance)
        bound = np.full(len(edges), np.inf)
        for chunk in np.array_split(suspect, max(1, len(suspect) // EDGE_BATCH)):
            if len(chunk):
                bound[chunk] = self.decoded_bounds(edges[chunk])
        return bound

    def decoded_bounds(self, edges):
        """The smallest clearance each edge's decoded samples guarantee, the stretch
        between samples included (collision.py's bound)."""
        graph, world = self.graph, self.world
        za, zb = graph.nodes[graph.edges[edges, 0]], graph.nodes[graph.edges[edges, 1]]
        pieces = segment_pieces(za, zb, graph.step, cap=EDGE_CHECK_PIECES)
        edge = np.repeat(np.arange(len(edges)), pieces + 1)
        first = np.repeat(np.cumsum(pieces + 1) - (pieces + 1), pieces + 1)
        t = (np.arange(len(edge)) - first) / pieces[edge]
        q = world.decode(za[edge] + t[:, None] * (zb[edge] - za[edge]))
        clearance, _, _ = world.checker.clearance(q)
        step = world.body.motion_bound(np.diff(q, axis=0))
        between = np.minimum((clearance[:-1] + clearance[1:] - step) / 2, clearance[:-1])
        same = edge[1:] == edge[:-1]
        bound = np.full(len(edges), np.inf)
        np.minimum.at(bound, edge[1:][same], between[same])
        np.minimum.at(bound, edge, clearance)
        return bound
