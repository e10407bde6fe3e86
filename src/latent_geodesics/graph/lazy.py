"""Graph paths that keep clear of the robot's world, checked lazily (Lazy PRM:
Bohlin & Kavraki, ICRA 2000): search the graph as the scene leaves it, check only the
found path, drop its edges that come too near an object, search again. Each round
checks the path's graph edges first, each edge once per scene (the scene's lazy
index, serving/world.py: later requests start without the edges found too near),
then, once they all keep clear, the whole path as it will be served (the request's
own ends and residuals). A scene update starts over, so the next request sees it.

The world (serving/world.py's RequestWorld) gives: search(), the graph's search for
its scene (weighted by its metric); blocked(), the edges (node pairs) the request
leaves out: those of the scene nearer than its margin, and those it found itself;
violations(points), which segments of a whole path from start to goal come too near
an object, checked as the served motion moves; near_edges(node_path), the path's
graph edges too near an object; block(pairs), edges to leave out.
"""
import numpy as np

from latent_geodesics.errors import GraphError

MAX_ROUNDS = 100   # whole-path checks per query before giving up (each drops an edge)
# Searches that only find graph edges already known too near: each checks at least one
# new edge, so they are bounded by the edges; this caps a pathological scene.
MAX_SEARCHES = 20 * MAX_ROUNDS


def lazy_node_path(graph, zs, zg, method, world):
    """(points, hops, PathStats) of the shortest path that keeps the world's margin
    from every object; GraphError when none does."""
    n = len(graph.nodes)
    skipped = set()    # this query's own edges (start/goal to a node) found colliding
    rounds = 0
    for _ in range(MAX_SEARCHES):
        try:
            points, hops, stats = graph._node_path(zs, zg, method, world.search(),
                                                   frozenset(skipped), world.blocked())
        except GraphError:
            raise GraphError(_no_free_path(rounds + 1)) from None
        if len(stats.node_path) > 1 and len(world.near_edges(stats.node_path)):
            continue   # the scene's index holds them now: blocked() leaves them out
        bad = np.flatnonzero(world.violations(points))
        if not len(bad):
            return points, hops, stats
        ids = stats.query_path
        pairs = [(ids[e], ids[e + 1]) for e in bad]
        world.block([(a, b) for a, b in pairs if max(a, b) < n])
        skipped.update(_query_edge(a, b, n) for a, b in pairs if max(a, b) >= n)
        rounds += 1
        if rounds >= MAX_ROUNDS:
            break
    raise GraphError(_no_free_path(rounds))


def _query_edge(a, b, n):
    """The key _node_path skips a query edge by: (n, v) start, (n + 1, v) goal."""
    if {a, b} == {n, n + 1}:
        return (n, n + 1)
    return (a, b) if a >= n else (b, a)


def _no_free_path(rounds):
    return ("no collision-free path along the demonstrations: every way the graph offers "
            "comes within collision_padding of an object (%d searches); move or remove the "
            "object, demonstrate a way around it, or lower collision_padding" % rounds)
