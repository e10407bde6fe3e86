"""The server's ROS-free logic: request checking, geodesics, cache, reload."""
import os
import shutil
import threading

import numpy as np
import pytest

from latent_geodesics.engine import Engine, RequestError, Settings


@pytest.fixture(scope="module")
def engine(arm_model_dir, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("engine") / "model")
    shutil.copytree(arm_model_dir, d)
    return Engine(d, Settings(device="cpu"), log=lambda m: None)


def test_graph_cache_written_and_used(engine):
    directory = engine.served.model.directory
    assert os.path.isfile(os.path.join(directory, "graph_k10_n10.npz"))
    assert engine.served.info["graph_source"] in ("built", "loaded from cache")
    assert engine.reload().info["graph_source"] == "loaded from cache"


def test_changed_settings_rebuild(engine):
    other = Engine(engine.served.model.directory, Settings(device="cpu", k=6), log=lambda m: 0)
    assert other.served.info["graph_source"] == "built"
    assert other.served.graph.k == 6


def test_encode_orders_joints_by_name(engine):
    names = list(engine.served.joint_names)
    q = np.linspace(-1, 1, 7)
    _, z1 = engine.encode(names, q)
    _, z2 = engine.encode(names[::-1], q[::-1])
    assert np.allclose(z1, z2)


def endpoint(z):
    return [], [], list(z)


def test_graph_and_nn_geodesics(engine):
    z = engine.served.model.latents
    res = engine.graph_geodesic(endpoint(z[0]), endpoint(z[-1]))
    assert np.allclose(res.latent[0], z[0]) and np.allclose(res.latent[-1], z[-1])
    assert res.positions.shape == (len(res.latent), 7) and (np.diff(res.times) > 0).all()
    nn = engine.nn_geodesic(endpoint(z[0]), endpoint(z[-1]), max_iterations=50)
    assert nn.length <= res.length * (1 + 1e-4)
    assert nn.stats["method"] == "graph+nn"


@pytest.mark.parametrize("start,fragment", [
    (([], [], [np.nan, 0.0]), "NaN"),
    (([], [], [0.0]), "multiple"),
    (([], [], []), "neither"),
    ((["a"], [0.0], [0.0, 0.0]), "both"),
    ((["bogus"] * 7, [0.0] * 7, []), "repeat"),
    (([], [], [50.0, 50.0]), "far outside"),
])
def test_bad_endpoints(engine, start, fragment):
    z = engine.served.model.latents
    with pytest.raises(RequestError, match=fragment):
        engine.graph_geodesic(start, endpoint(z[0]))


def test_start_equals_goal_and_bad_nn_settings(engine):
    z = engine.served.model.latents
    with pytest.raises(RequestError, match="same point"):
        engine.graph_geodesic(endpoint(z[0]), endpoint(z[0]))
    for kwargs, fragment in [(dict(max_iterations=0), "max_iterations"),
                             (dict(max_iterations=10 ** 7), "max_iterations"),
                             (dict(mode="x"), "mode"), (dict(init="x"), "init")]:
        with pytest.raises(RequestError, match=fragment):
            engine.nn_geodesic(endpoint(z[0]), endpoint(z[1]), **kwargs)


def test_requests_in_flight_keep_their_model(engine):
    z = engine.served.model.latents
    before = engine.served
    results, errors = [], []

    def query():
        try:
            for _ in range(10):
                results.append(engine.graph_geodesic(endpoint(z[0]), endpoint(z[-1])).length)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    engine.reload()
    for t in threads:
        t.join()
    assert not errors and len(set(np.round(results, 12))) == 1
    assert engine.served is not before


def test_magnification(engine):
    values, logs = engine.magnification([0.0, 0.0, 0.1, 0.2])
    assert values.shape == (2,) and np.allclose(np.log(values), logs)
