"""Section 13: the robot's world. Are served motions collision-free, answered, and
still along the demonstrations, with objects put where the demonstrations pass?

Two data sets on the package's Panda (urdf/panda.urdf as robot_description): the
simulated arm's reaches (a pair: a reach's start and end, the reach itself its
demonstrated motion) and the six curved skills placed within the Panda's limits
(sim/skills.py's panda_skills; a pair: two poses of one skill, the noise-free skill
between them). Models are section 12's (train_iwae's defaults, trained once per run).

Each scene holds 1-5 boxes, spheres and cylinders (radius or half-sizes 3-8 cm,
turned at random), each centred on a body sphere (RobotBody.sphere_centres, links 3-7)
at a pose mid-way along a demonstrated motion: the first on the scene's own pair,
the others on it, another queried pair or any pair; in every fifth scene one more on
the hand at the goal of the scene's pair. Three pairs are asked per scene.

    ours      Engine.graph_geodesic with the scene (checks, refusals, barrier)
    soft      the same engine and metric with the obstacle term computed from one
              sphere at each link frame's origin (the joint origins) and no check or
              refusal: IJRR 2023's construction (Beik-Mohammadi et al.)

Every served motion (its trajectory points, the joint polyline between them) goes
through world/verification.py's dense_collisions: points every 1 cm on the URDF
geometry (surfaces and interior), posed every SPACING of point motion. Only the
stretches that the same points' bounding balls cannot prove NEAR or more from every
object are sampled that finely (verified_clearance); the rest are sampled at the
trajectory points, so clearances below NEAR are exact to the sampling and larger
ones are read at the points.
"""
import os
import re
import time

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from latent_geodesics.data import arm_dataset
from latent_geodesics.errors import RequestError
from latent_geodesics.serving.engine import Engine, Settings
from latent_geodesics.serving.fidelity import densify, largest_deviation
from latent_geodesics.serving.parsing import endpoints
from latent_geodesics.serving.planning import plan
from latent_geodesics.serving.world import PathWorld, RequestWorld
from latent_geodesics.sim.skills import curved_pairs, panda_skills
from latent_geodesics.world import verification
from latent_geodesics.world.body import RobotBody, build_chain
from latent_geodesics.world.collision import CollisionChecker, Primitives
from latent_geodesics.world.scene import Scene, Shape, WorldObject
from latent_geodesics.world.urdf import parse_urdf
from latent_geodesics.world.verification import dense_collisions, joint_speeds, link_points

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "urdf",
                       "panda.urdf")) as f:
    PANDA = f.read()
SCENES = 50
PAIRS_PER_SCENE = 2
SIZE = (0.03, 0.08)       # m: a sphere's radius, a cylinder's radius and half-height,
                          # a box's half-sizes
GOAL_EVERY = 5            # every fifth scene has an object on the hand at the goal
SPACING = 0.001           # m of point motion between the independent check's samples
NEAR = 0.02               # m: ours' stretches that may come nearer are sampled finely
SOFT_NEAR = 0.005         # m: the same for the baseline and the demonstrations
DEMO_SPACING = 0.01       # m: the demonstrations' own check (free or blocked?)
COARSE = 0.005            # m: the soft baseline's first check (a collision found is one)
ORIGIN_RADIUS = 0.05      # m: the soft baseline's sphere at each link frame's origin
FREE = 0.02               # m: a demonstration this clear of every object is free
MIDWAY = (0.25, 0.75)     # where along a demonstration an object is put


# --- the independent check, sampled finely where it matters ---------------------
def sample_once():
    """link_points samples the same points on every call (trimesh's sampling is
    seeded), and that is most of a short check's time: while the bench runs, they are
    sampled once per robot (its whole description the key) and spacing."""
    sample, known = link_points, {}

    def cached(robot, spacing, package_dirs=None):
        key = (robot.to_xml_string(), spacing, repr(package_dirs))
        if key not in known:
            known[key] = sample(robot, spacing, package_dirs)
        return known[key]
    verification.link_points = cached


def keeping(urdf, links):
    """The URDF with the geometry of every link but `links` removed (joints kept)."""
    from lxml import etree
    root = etree.fromstring(urdf.encode("utf-8"))
    for link in root.iter("link"):
        if link.get("name") not in links:
            for element in link.findall("visual") + link.findall("collision"):
                link.remove(element)
    return etree.tostring(root, encoding="unicode")


class Verifier:
    """dense_collisions over the stretches of a motion that may come within NEAR of
    an object, with the links that may. Broad phase: the check's own points, binned
    per link into BALL cubes, each bin a ball (centroid, radius) in the link frame; the
    motion's rows are subdivided along their straight joint-space segments until no
    point moves more than SUBSTEP between them (verification.joint_speeds, the
    check's own bound), and a link whose balls' clearances at a sub-segment's ends
    d0, d1 leave (d0 + d1 - b) / 2 >= NEAR (distances are 1-Lipschitz) cannot come
    nearer along it. The check proper is dense_collisions, unchanged, on the URDF
    keeping those links' geometry."""

    BALL, SUBSTEP = 0.03, 0.01   # m

    def __init__(self, urdf, joint_names):
        robot = parse_urdf(urdf)
        self.urdf, self.names = urdf, list(joint_names)
        self.chain = build_chain(urdf).to(dtype=torch.float64)
        assert self.chain.get_joint_parameter_names() == self.names, "drive every joint"
        points = link_points(robot, 0.01)
        self.links = [n for n in points if n in self.chain.frame_to_idx]
        owner, centres, radii = [], [], []
        for number, link in enumerate(self.links):
            local = points[link]
            _, bins = np.unique(np.floor(local / self.BALL), axis=0, return_inverse=True)
            for k in range(bins.max() + 1):
                mine = local[bins.ravel() == k]
                centre = mine.mean(axis=0)   # inside the hull: joint_speeds bounds it
                owner.append(number)
                centres.append(centre)
                radii.append(np.linalg.norm(mine - centre, axis=1).max())
        self.owner, self.centres, self.radii = np.array(owner), np.array(centres), np.array(radii)
        self.frames = torch.as_tensor([self.chain.frame_to_idx[self.links[o]] for o in owner])
        self.speeds = joint_speeds(self.chain, points, self.names, robot)
        self._urdfs = {}

    def ball_clearance(self, scene, q):
        """(T, links): each link's balls' smallest clearance from an object at rows q."""
        primitives = Primitives(scene, torch.float64)
        out = []
        with torch.no_grad():
            for chunk in np.array_split(q, max(1, len(q) // 256)):
                pose = self.chain.forward_kinematics_tensor(torch.as_tensor(chunk))[self.frames]
                centres = torch.einsum("kbij,kj->bki", pose[..., :3, :3],
                                       torch.as_tensor(self.centres)) \
                    + pose[..., :3, 3].transpose(0, 1)
                d = primitives.distances(centres.reshape(-1, 3)).min(dim=1).values
                out.append(d.reshape(len(chunk), -1).numpy() - self.radii)
        starts = np.flatnonzero(np.r_[True, np.diff(self.owner) != 0])   # balls by link
        return np.minimum.reduceat(np.vstack(out), starts, axis=1)

    def subdivided(self, q):
        """The rows of q with rows added along each straight segment, so that no
        check point moves more than SUBSTEP between consecutive rows."""
        pieces = np.maximum(1, np.ceil(np.abs(np.diff(q, axis=0)) @ self.speeds
                                       / self.SUBSTEP)).astype(int)
        rows = [q[k] + np.arange(p)[:, None] / p * (q[k + 1] - q[k])
                for k, p in enumerate(pieces)]
        return np.vstack(rows + [q[-1:]])

    def urdf_of(self, links):
        key = tuple(sorted(links))
        if key not in self._urdfs:
            self._urdfs[key] = keeping(self.urdf, set(links))
        return self._urdfs[key]

    def check(self, scene, positions, spacing=SPACING, near=NEAR):
        """(collides, smallest clearance m, link, object, samples checked): the rows
        with every link, then the stretches that may come within `near` finely."""
        q = np.asarray(positions, dtype=np.float64)
        if not scene.objects:
            return False, np.inf, "", "", 0
        rows = dense_collisions(self.urdf, self.names, scene, q, spacing=1e3)
        found = [rows.collides, rows.clearance, rows.link, rows.object, rows.samples]
        if len(q) < 2:
            return tuple(found)
        fine = self.subdivided(q)
        c = self.ball_clearance(scene, fine)
        bound = np.abs(np.diff(fine, axis=0)) @ self.speeds
        lower = (c[:-1] + c[1:] - bound[:, None]) / 2   # (segments, links)
        for a, b in stretches(lower.min(axis=1) < near):
            links = [self.links[k] for k in np.flatnonzero(lower[a:b].min(axis=0) < near)]
            d = dense_collisions(self.urdf_of(links), self.names, scene, fine[a:b + 1],
                                 spacing=spacing)
            found[0] |= d.collides
            found[4] += d.samples
            if d.clearance < found[1]:
                found[1:4] = d.clearance, d.link, d.object
        return tuple(found)

    def check_soft(self, scene, positions):
        """A collision the coarse check finds is one (a sampled point inside an object);
        where it finds none, the fine check decides."""
        coarse = self.check(scene, positions, COARSE, SOFT_NEAR)
        return coarse if coarse[0] else self.check(scene, positions, near=SOFT_NEAR)


def stretches(flags):
    """(first row, last row) of each run of True segments."""
    edges = np.diff(np.r_[0, np.asarray(flags, int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


# --- the soft baseline ------------------------------------------------------------
class SoftWorld(PathWorld):
    """The scene seen through the barrier of a joint-origin body alone: no edge is
    dropped, no motion checked or refused (IJRR 2023: the metric reshaped, no check)."""

    def blocked_edges(self, margin):
        return np.zeros(len(self.served.graph.edges), dtype=bool)

    def check_motion(self, timing, a_peak):
        return self.checker.smallest(timing.positions)

    def request(self, q_start, q_goal, margin):
        return SoftRequest(self, q_start, q_goal, margin)


class SoftRequest(RequestWorld):
    def violations(self, points):
        return np.zeros(len(points) - 1, dtype=bool)

    def keep_clear(self, positions, extra=False):
        return positions, ""


def origin_body(urdf, joint_names, radius=ORIGIN_RADIUS):
    """A RobotBody of one sphere at each link frame's origin (every link: a link without
    geometry has a frame too)."""
    links = [link.name for link in parse_urdf(urdf).links]
    return RobotBody.from_urdf(urdf, joint_names, spheres={n: [[0, 0, 0, radius]]
                                                           for n in links})


def soft_geodesic(engine, soft, start, goal):
    """engine.graph_geodesic's steps with the soft world in place of the scene's."""
    served = engine.served
    (zs, qs), (zg, qg) = endpoints(served, engine.settings, start, goal)
    request = soft.request(qs, qg, 0.0)
    path = Engine.graph_path(served, zs, zg, request)
    return plan(served, engine.settings, path, qs, qg, (1.0, 1.0), request)


# --- data sets and scenes --------------------------------------------------------
def arm_case():
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    starts = np.r_[0, np.cumsum([len(d) for d in arm.demos])[:-1]]
    pairs = [(int(s), int(s) + len(d) - 1, d) for s, d in zip(starts, arm.demos)]
    return "simulated arm", arm.data, arm.joint_names, pairs


def panda_case(n_pairs=60):
    skills = panda_skills()
    pairs = [(a, b, skills.motion(skills.skills[a], pa, pb, 400))
             for a, b, pa, pb in curved_pairs(skills, n_pairs)]
    return "curved skills (Panda)", skills.data, skills.joint_names, pairs


def primitive(rng, name, centre):
    """A box, sphere or cylinder of SIZE, turned at random, centred at centre; (object,
    its largest full extent in m)."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    pose[:3, 3] = centre
    kind = ("box", "sphere", "cylinder")[rng.integers(3)]
    half = rng.uniform(*SIZE, size=3)
    if kind == "box":
        shape, extent = Shape.box(2 * half), 2 * half.max()
    elif kind == "sphere":
        shape, extent = Shape.sphere(half[0]), 2 * half[0]
    else:
        shape, extent = Shape.cylinder(2 * half[1], half[0]), 2 * max(half[:2])
    return WorldObject(name, pose, (shape,)), float(extent)


def on_body(rng, body, q, links=(5, 6, 7)):
    """A random body sphere's centre (links by their index in body.link_names)."""
    centres = body.sphere_centres(np.asarray(q)[None])[0].detach().double().numpy()
    mine = np.flatnonzero(np.isin(body.sphere_links, links))
    return centres[rng.choice(mine)]


def ends_clearance(body, obj, truth):
    """m: the body's (sphere cover's) clearance from obj at a demonstration's ends."""
    checker = CollisionChecker(body, Scene("", [obj]), padding=0.0)
    return float(checker.clearance(np.stack([truth[0], truth[-1]]))[0].min())


def on_demonstration(rng, body, name, truth, tries=50):
    """(object, extent) centred on the body mid-way along a demonstrated motion,
    clear of the motion's ends (a way blocked, the ends free), or None."""
    for _ in range(tries):
        q = truth[int(rng.uniform(*MIDWAY) * (len(truth) - 1))]
        obj, extent = primitive(rng, name, on_body(rng, body, q))
        if ends_clearance(body, obj, truth) >= FREE:
            return obj, extent
    return None


def make_scene(seed, body, pairs, frame):
    """(Scene, {object: extent}, the queried pair indices) of one bench scene."""
    rng = np.random.default_rng(seed)
    asked = [int(i) for i in rng.choice(len(pairs), PAIRS_PER_SCENE, replace=False)]
    objects, sizes = [], {}
    for k in range(int(rng.integers(1, 6))):
        placed = None
        for attempt in range(5):   # a pair whose every mid-way pose is near its ends: another
            on = asked[0] if k == attempt == 0 else (
                rng.choice(asked) if rng.random() < 0.5 else int(rng.integers(len(pairs))))
            placed = on_demonstration(rng, body, "object%d" % k, pairs[on][2])
            if placed is not None:
                break
        if placed is not None:
            objects.append(placed[0])
            sizes[placed[0].id] = placed[1]
    if seed % GOAL_EVERY == 0:
        hand = len(body.link_names) - 1
        goal = pairs[asked[0]][2][-1]
        obj, sizes["at_goal"] = primitive(rng, "at_goal", on_body(rng, body, goal, (hand,)))
        objects.append(obj)
    return Scene(frame, objects), sizes, asked


def body_deviation(body, motion, truth):
    """m: the largest, over the motion's poses, of how far the body's sphere centres
    are from where they are at the nearest pose of the demonstrated motion (each
    sphere against itself; nearest: the pose that makes the largest of them least)."""
    with torch.no_grad():
        a = body.sphere_centres(np.asarray(motion)).double()
        b = body.sphere_centres(np.asarray(truth)).double()
    worst = torch.zeros(len(a), len(b), dtype=torch.float64)
    for s in range(a.shape[1]):
        worst = torch.maximum(worst, torch.cdist(a[:, s], b[:, s]))
    return float(worst.min(dim=1).values.max())


# --- one data set ----------------------------------------------------------------
def ask(serve, *args):
    """(result or None, latency s, refusal message or None). Anything but a refusal
    (RequestError) is a failure of the server, recorded as such, not hidden."""
    t0 = time.perf_counter()
    try:
        result = serve(*args)
    except RequestError as e:
        return None, time.perf_counter() - t0, str(e)
    except Exception as e:   # noqa: BLE001 - the bench reports it
        return None, time.perf_counter() - t0, "FAILED: %s: %s" % (type(e).__name__, e)
    return result, time.perf_counter() - t0, None


def served_row(result, latency, check, scene, body, truth):
    collides, clearance, link, obj, samples = check(scene, result.positions)
    return {"latency_ms": 1e3 * latency, "collides": bool(collides),
            "clearance": float(clearance), "link": link, "object": obj,
            "samples": int(samples), "deviation": largest_deviation(result.positions, truth),
            "body_deviation": body_deviation(body, result.positions, densify(truth, 0.01)),
            "data_distance": float(result.stats.data_distance),
            "method": result.stats.method,
            "engine_clearance": float(result.stats.min_clearance)}


def query(engine, soft, verifier, scene, pair, data, first):
    """One pair in one scene: its ends and demonstration checked, then ours and soft."""
    a, b, truth = pair
    names = list(engine.served.joint_names)
    start, goal = (names, list(data[a]), []), (names, list(data[b]), [])
    demo = verifier.check(scene, truth, DEMO_SPACING, SOFT_NEAR)
    row = {"pair": [a, b], "first": first,
           "start_collides": bool(verifier.check(scene, data[[a]])[0]),
           "goal_collides": bool(verifier.check(scene, data[[b]])[0]),
           "demo_clearance": float(demo[1]), "demo_object": demo[3]}
    body = engine.served.body
    for method, serve, args in (("ours", engine.graph_geodesic, (start, goal)),
                                ("soft", soft_geodesic, (engine, soft, start, goal))):
        result, latency, refused = ask(serve, *args)
        if result is None:
            named = bool(re.search(r"panda_link\d", refused)) and any(
                o in refused for o in scene.object_ids)
            row[method] = {"refused": refused, "names_link_and_object": named,
                           "latency_ms": 1e3 * latency}
        else:
            check = verifier.check if method == "ours" else verifier.check_soft
            row[method] = served_row(result, latency, check, scene, body, truth)
    return row


def with_scene(engine, scene):
    """The engine's world replaced by scene's objects (one update, as a node's)."""
    return engine.world.update(lambda old: Scene(old.frame, scene.objects.values(),
                                                 old.version + 1))


def evaluate(name, data, names, pairs, scenes=None, log=print):
    from follows import trained
    scenes = SCENES if scenes is None else scenes
    model, report, directory = trained(name, data, names, log)
    engine = Engine(directory, Settings(device="cpu", graph_cache=False),
                    robot_description=PANDA, log=lambda m: None)
    served, body = engine.served, engine.served.body
    verifier, soft_body = Verifier(PANDA, names), origin_body(PANDA, names)
    made = [make_scene(seed, body, pairs, engine.world.scene.frame) for seed in range(scenes)]
    empty = {}   # the same pairs served without objects
    for i in sorted({i for _, _, asked in made for i in asked}):
        a, b, truth = pairs[i]
        result, _, refused = ask(engine.graph_geodesic, (names, list(data[a]), []),
                                 (names, list(data[b]), []))
        empty[i] = None if result is None else largest_deviation(result.positions, truth)
    rows = []
    for seed, (scene, sizes, asked) in enumerate(made):
        scene = with_scene(engine, scene)
        t0 = time.perf_counter()
        soft = SoftWorld(served, soft_body, scene, engine.world.settings)
        soft_build = time.perf_counter() - t0
        for n, i in enumerate(asked):
            row = query(engine, soft, verifier, scene, pairs[i], data, n == 0)
            row.update(scene=seed, objects=len(scene.objects), sizes=sizes,
                       empty_deviation=empty[i], soft_build_ms=1e3 * soft_build)
            rows.append(row)
        log("   %s scene %d (%.0f s): %s" % (name, seed, time.perf_counter() - t0, ", ".join(
            "%s %s" % (m, "refused" if "refused" in r[m] else
                       "collides" if r[m]["collides"] else "clear")
            for r in rows[-len(asked):] for m in ("ours", "soft"))))
    with_scene(engine, Scene(engine.world.scene.frame))
    return {"name": name, "latent_dim": model.z_dim, "graph_nodes": len(served.graph),
            "scenes": scenes, "rows": rows}


# --- latency on the 10,000-node arm graph ---------------------------------------
WORKSPACE = ((-0.8, -0.8, 0.0), (0.8, 0.8, 1.2))   # m: a box around the Panda's reach
PLACEMENTS = {
    "on demonstrated reaches": "every object centred on the body mid-way along a "
                               "demonstrated reach (the way most queries take is blocked)",
    "anywhere in reach": "objects centred uniformly in the robot's reach "
                         "(-0.8..0.8, -0.8..0.8, 0..1.2 m), kept clear of the queries' ends "
                         "(a cluttered workspace: some ways are blocked)"}


def anywhere(rng, body, name, ends, tries=1000):
    """(object, extent) centred anywhere in WORKSPACE, clear of every queried end, or
    None."""
    for _ in range(tries):
        obj, extent = primitive(rng, name, rng.uniform(*WORKSPACE))
        if ends_clearance(body, obj, ends) >= FREE:
            return obj, extent
    return None


def latency(queries=30, scenes=4, objects=10, log=print):
    """In-process graph_geodesic p50 with no objects and with `objects` placed two ways
    (PLACEMENTS) on section 6's arm (400 reaches, 10,000 poses, train_iwae 30
    epochs); the first request after each scene update apart."""
    import tempfile

    from latent_geodesics.model.iwae import save_model
    from latent_geodesics.model.training import train_iwae
    arm = arm_dataset(n_demos=400, hole=True, seed=5)
    model, _ = train_iwae(arm.data, arm.joint_names, epochs=30, device="cpu", progress=False)
    directory = tempfile.mkdtemp(prefix="bench_world_")
    save_model(model, directory, model.meta)
    engine = Engine(directory, Settings(device="cpu", graph_cache=False),
                    robot_description=PANDA, log=lambda m: None)
    names, body = list(engine.served.joint_names), engine.served.body
    rng = np.random.default_rng(0)
    asked = [arm.demos[i] for i in rng.choice(len(arm.demos), queries, replace=False)]
    ends = [((names, list(d[0]), []), (names, list(d[-1]), [])) for d in asked]
    every_end = np.array([q for d in asked for q in (d[0], d[-1])])
    ask(engine.graph_geodesic, *ends[0])   # warm-up: torch's first calls
    empty = [ask(engine.graph_geodesic, *e) for e in ends]
    place = {"on demonstrated reaches": lambda k: on_demonstration(
                 rng, body, "object%d" % k, arm.demos[rng.integers(len(arm.demos))]),
             "anywhere in reach": lambda k: anywhere(rng, body, "object%d" % k, every_end)}
    rows = [placed_latency(engine, ends, empty, place[name], name, scenes, objects, log)
            for name in PLACEMENTS]
    with_scene(engine, Scene("", []))
    return {"graph_nodes": len(engine.served.graph), "queries": queries, "scenes": scenes,
            "objects": objects, "placements": rows,
            "empty_p50_ms": 1e3 * float(np.median([t for _, t, _ in empty]))}


def placed_latency(engine, ends, empty, place, name, scenes, objects, log):
    """One placement's scenes: every query asked in each (as latency() says)."""
    first, full, answered_both, refused, methods = [], [], [], 0, {}
    for scene in range(scenes):
        placed = [place(k) for k in range(objects)]
        with_scene(engine, Scene("", [p[0] for p in placed if p is not None]))
        first.append(ask(engine.graph_geodesic, *ends[scene])[1])
        for k, e in enumerate(ends):
            result, seconds, _ = ask(engine.graph_geodesic, *e)
            full.append(seconds)
            refused += result is None
            if result is not None and empty[k][0] is not None:
                answered_both.append((empty[k][1], seconds))
                way = result.stats.method.split("+", 1)[-1] if "+" in result.stats.method \
                    else "along the demonstrations"
                methods[way] = methods.get(way, 0) + 1
        log("   latency, %s, scene %d: %d objects" % (name, scene,
                                                      len(engine.world.scene.objects)))
    both = np.array(answered_both).reshape(-1, 2)
    return {"placement": name, "objects_p50_ms": 1e3 * float(np.median(full)),
            "answered_both": len(both), "refused_with_objects": int(refused),
            "both_empty_p50_ms": 1e3 * float(np.median(both[:, 0])) if len(both) else None,
            "both_objects_p50_ms": 1e3 * float(np.median(both[:, 1])) if len(both) else None,
            "ways": methods,
            "first_after_update_p50_ms": 1e3 * float(np.median(first)),
            "first_after_update_max_ms": 1e3 * float(np.max(first))}


# --- the table ---------------------------------------------------------------------
def served(rows, method):
    return [r[method] for r in rows if "refused" not in r[method]]


def summarise(case, method):
    """One row of the table: a data set's scenes through one method."""
    rows = case["rows"]
    ends_free = [r for r in rows if not (r["start_collides"] or r["goal_collides"])]
    goal_hit = [r for r in rows if r["goal_collides"]]
    out = served(rows, method)
    clear = [s["clearance"] for s in out]
    later = [r[method]["latency_ms"] for r in rows if not (method == "ours" and r["first"])]
    return {
        "name": case["name"], "method": method, "scenes": case["scenes"],
        "queries": len(rows), "ends_free": len(ends_free),
        "answered_ends_free": sum("refused" not in r[method] for r in ends_free),
        "served": len(out), "collisions": sum(s["collides"] for s in out),
        "collision_cases": [{"scene": r["scene"], "pair": r["pair"], "clearance":
                             r[method]["clearance"], "link": r[method]["link"],
                             "object": r[method]["object"]}
                            for r in rows if "refused" not in r[method]
                            and r[method]["collides"]],
        "goal_collides": len(goal_hit),
        "goal_refused_named": sum("refused" in r[method] and
                                  r[method]["names_link_and_object"] for r in goal_hit),
        "failures": [r[method]["refused"] for r in rows
                     if r[method].get("refused", "").startswith("FAILED")],
        "clearance_median": float(np.median(clear)) if clear else float("nan"),
        "clearance_min": float(np.min(clear)) if clear else float("nan"),
        "deviation_median": median([s["deviation"] for r in ends_free
                                    for s in served([r], method)]),
        "data_distance_median": median([s["data_distance"] for s in out]),
        "latency_p50_ms": median(later),
        "first_latency_p50_ms": median([r[method]["latency_ms"] for r in rows if r["first"]]),
        **demonstration_figures(ends_free, method)}


def median(values):
    return float(np.median(values)) if len(values) else float("nan")


def demonstration_figures(rows, method):
    """Free demonstrations: the served motion's largest distance from it (rad), and
    the same query's without objects; blocked ones: the body's largest distance from
    the demonstrated motion over the size of the object it hit."""
    free = [r for r in rows if r["demo_clearance"] >= FREE and "refused" not in r[method]
            and r["empty_deviation"] is not None]
    blocked = [r for r in rows if r["demo_clearance"] < 0 and "refused" not in r[method]]
    ratios = [r[method]["body_deviation"] / r["sizes"][r["demo_object"]] for r in blocked]
    return {"free_pairs": len(free),
            "free_deviation_median": median([r[method]["deviation"] for r in free]),
            "free_empty_deviation_median": median([r["empty_deviation"] for r in free]),
            "free_no_worse": sum(r[method]["deviation"] <= r["empty_deviation"] + 0.01
                                 for r in free),
            "blocked_pairs": len(blocked),
            "blocked_body_deviation_median": median([r[method]["body_deviation"]
                                                     for r in blocked]),
            "blocked_size_ratio_median": median(ratios),
            "blocked_within_2x": int(sum(x <= 2 for x in ratios))}


PARTS = {"arm": arm_case, "panda": panda_case, "latency": None}


def world(results, parts=tuple(PARTS), log=print):
    """Runs the section's parts into results["world"] (the others kept)."""
    threads = torch.get_num_threads()   # the report's header gives the machine's
    torch.set_num_threads(1)
    sample_once()
    current = results.setdefault("world", {"cases": [], "latency": None})
    try:
        run_parts(current, parts, log)
    finally:
        torch.set_num_threads(threads)


def run_parts(current, parts, log):
    for part in parts:
        if PARTS[part] is None:
            current["latency"] = latency(log=log)
            continue
        out = evaluate(*PARTS[part](), log=log)
        out["part"] = part
        out["summary"] = [summarise(out, m) for m in ("ours", "soft")]
        cases = {c["part"]: c for c in current["cases"]}
        cases[part] = out
        current["cases"] = [cases[p] for p in PARTS if p in cases]


def report_lines(results):
    w = results["world"]
    md = ["", "## 13. The robot's world: collision-free motions along the demonstrations", "",
          "The Panda URDF on robot_description; %d scenes per data set of 1-5 boxes, spheres "
          "and cylinders (radius or half-sizes 3-8 cm) centred on the body mid-way along "
          "demonstrated motions, every %dth with one more on the hand at a goal; %d pairs "
          "asked per scene. ours = ~graph_geodesic with the scene; soft = the same engine "
          "and metric with the obstacle term from a %.0f cm sphere at each link frame's "
          "origin and no check or refusal (IJRR 2023's construction). Collisions: "
          "world/verification.py's dense_collisions (points every 1 cm on the URDF's "
          "geometry, not the sphere cover), every %.0f mm of point motion where a motion "
          "may come within %.0f cm of an object (soft: %.0f mm first, then %.0f mm where "
          "that finds none), at the trajectory points elsewhere. Answered: of the queries "
          "whose start and goal are free by the same check. Distance from the "
          "demonstrations: the served motion's largest distance from the demonstrated "
          "motion (rad), median over the answered queries with free ends."
          % (SCENES, GOAL_EVERY, PAIRS_PER_SCENE, 100 * ORIGIN_RADIUS, 1e3 * SPACING,
             100 * NEAR, 1e3 * COARSE, 1e3 * SPACING), "",
          "| data (latent dim) | method | scenes | queries | answered | collisions | goal "
          "collides: refused naming link and object | clearance median / min | distance "
          "from demonstrations | data distance | latency p50 (first after an update) |",
          "|" + "---|" * 11]
    for case in w["cases"]:
        for s in case["summary"]:
            md.append("| %s (%d) | %s | %d | %d | %d / %d (%s) | %d of %d | %d of %d | "
                      "%s / %s m | %s rad | %s rad | %s ms (%s ms) |" % (
                          s["name"], case["latent_dim"], s["method"], s["scenes"],
                          s["queries"], s["answered_ends_free"], s["ends_free"],
                          shown("%.0f %%", 100.0 * s["answered_ends_free"] / s["ends_free"]
                                if s["ends_free"] else np.nan),
                          s["collisions"], s["served"], s["goal_refused_named"],
                          s["goal_collides"], shown("%.3f", s["clearance_median"]),
                          shown("%.3f", s["clearance_min"]),
                          shown("%.3f", s["deviation_median"]),
                          shown("%.3f", s["data_distance_median"]),
                          shown("%.0f", s["latency_p50_ms"]),
                          shown("%.0f", s["first_latency_p50_ms"])))
    md += [""] + demonstration_lines(w)
    return md + ([""] + latency_lines(w["latency"]) if w.get("latency") else [])


def shown(fmt, value):
    """A figure for the table; '-' where there is none (nothing of that kind)."""
    return fmt % value if value is not None and np.isfinite(value) else "-"


def demonstration_lines(w):
    md = []
    for case in w["cases"]:
        ours, soft = case["summary"]
        md.append(
            "- %s: %d answered pairs whose demonstration keeps %.0f cm from every object: "
            "median distance from it %s rad (the same queries without objects: %s); "
            "%d of them within 0.01 rad of their distance without objects. %d answered "
            "pairs whose demonstration goes through an object: the body strays %s m "
            "(median) from the demonstrated motion, %s x the object's size (its largest "
            "extent; median), %d of them within 2 x; soft: %s m, %s x. Server failures "
            "(not refusals): %d."
            % (case["name"], ours["free_pairs"], 100 * FREE,
               shown("%.3f", ours["free_deviation_median"]),
               shown("%.3f", ours["free_empty_deviation_median"]), ours["free_no_worse"],
               ours["blocked_pairs"], shown("%.3f", ours["blocked_body_deviation_median"]),
               shown("%.2f", ours["blocked_size_ratio_median"]), ours["blocked_within_2x"],
               shown("%.3f", soft["blocked_body_deviation_median"]),
               shown("%.2f", soft["blocked_size_ratio_median"]),
               len(ours["failures"]) + len(soft["failures"])))
        for hit in ours["collision_cases"]:
            md.append("  - ours COLLIDES: scene %d, pair %s: %s %.4f m into %s"
                      % (hit["scene"], hit["pair"], hit["link"], -hit["clearance"],
                         hit["object"]))
    return md


def latency_lines(lat):
    if "placements" not in lat:   # a run from before the placements
        return []
    md = ["In-process graph_geodesic on the %d-node arm graph (section 6's model), %d "
          "queries (demonstrated reaches' ends): p50 %.1f ms without objects. With %d "
          "objects (%d scenes per placement; target: p50 <= 2 x without, over the queries "
          "answered in both):" % (lat["graph_nodes"], lat["queries"], lat["empty_p50_ms"],
                                  lat["objects"], lat["scenes"]), ""]
    for row in lat["placements"]:
        ratio = (row["both_objects_p50_ms"] / row["both_empty_p50_ms"]
                 if row["answered_both"] else float("nan"))
        ways = ", ".join("%d %s" % (n, way) for way, n in sorted(row["ways"].items()))
        md.append("- %s (%s): p50 %.1f ms over every request (%d refused); %s ms vs %s ms "
                  "over the %d answered in both (ratio %.2f); answered by: %s; the first "
                  "request after a scene update: p50 %.0f ms, at most %.0f ms."
                  % (row["placement"], PLACEMENTS.get(row["placement"], ""),
                     row["objects_p50_ms"], row["refused_with_objects"],
                     shown("%.1f", row["both_objects_p50_ms"]),
                     shown("%.1f", row["both_empty_p50_ms"]), row["answered_both"], ratio,
                     ways or "none", row["first_after_update_p50_ms"],
                     row["first_after_update_max_ms"]))
    return md
