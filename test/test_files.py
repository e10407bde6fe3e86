"""Every file the package writes: through files.atomic_write (an exclusive temporary
beside the target, renamed into place) or files.open_log; never through a link."""
import os
import stat

import numpy as np
import pytest
from decoders import sphere, sphere_nodes

from latent_geodesics.files import SymlinkTargetError, atomic_write, open_log
from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.learning.store import DemoStore
from latent_geodesics.model.iwae import load_model, save_model

VICTIM = b"a file someone else owns\n"


@pytest.fixture()
def victim(tmp_path):
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_bytes(VICTIM)
    return path


@pytest.fixture(scope="module")
def small_graph():
    return LatentGraph(sphere, sphere_nodes(200, seed=1), k=6)


def test_the_graph_cache_never_writes_through_a_planted_temporary(small_graph, tmp_path,
                                                                    victim):
    path = tmp_path / "graph.npz"
    os.symlink(victim, str(path) + ".tmp.npz")      # the name the cache once wrote first
    small_graph.save(str(path), model_id="m")
    assert victim.read_bytes() == VICTIM
    assert not path.is_symlink()
    loaded = LatentGraph.load(str(path), sphere, model_id="m")
    assert np.array_equal(loaded.weights, small_graph.weights)


def test_a_symlinked_target_is_refused_naming_it(small_graph, tmp_path, victim):
    path = tmp_path / "graph.npz"
    os.symlink(victim, path)
    with pytest.raises(SymlinkTargetError, match="graph.npz is a symbolic link.*remove the link"):
        small_graph.save(str(path))
    assert victim.read_bytes() == VICTIM and path.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "graph.npz"]   # no temporary left


def test_model_files_never_write_through_planted_temporaries(arm_model, tmp_path, victim):
    directory = tmp_path / "model"
    directory.mkdir()
    for name in ("weights.pt", "latents.npy", "data.npy", "model.yaml"):
        os.symlink(victim, directory / (name + ".tmp"))   # the names once written first
    save_model(arm_model, str(directory), arm_model.meta)
    assert victim.read_bytes() == VICTIM
    assert load_model(str(directory), "cpu").joint_names == arm_model.joint_names
    os.symlink(victim, directory / "elsewhere.yaml")
    os.replace(directory / "elsewhere.yaml", directory / "model.yaml")
    with pytest.raises(SymlinkTargetError, match="model.yaml is a symbolic link"):
        save_model(arm_model, str(directory), arm_model.meta)
    assert victim.read_bytes() == VICTIM


def test_a_store_export_to_a_symlink_is_refused(tmp_path, victim):
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.arange(6.0).reshape(3, 2), ["a", "b"])
    for name in ("out.csv", "out.npz"):
        os.symlink(victim, tmp_path / name)
        with pytest.raises(SymlinkTargetError, match=name):
            store.export(str(tmp_path / name))
    assert victim.read_bytes() == VICTIM
    assert store.export(str(tmp_path / "real.csv")) == 3
    assert (tmp_path / "real.csv").read_text().splitlines() == ["a,b", "0.0,1.0", "2.0,3.0",
                                                                "4.0,5.0"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(str(path), lambda f: f.write("old"), "w")

    def fail(f):
        f.write("half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(str(path), fail, "w")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask   # not mkstemp's 0600


def test_logs_are_never_opened_through_a_link(tmp_path, victim):
    log = tmp_path / "training.log"
    os.symlink(victim, log)
    for append in (False, True):
        with pytest.raises(SymlinkTargetError, match="training.log"):
            open_log(str(log), append)
    assert victim.read_bytes() == VICTIM
    os.unlink(log)
    with open_log(str(log)) as f:
        f.write("one\n")
    with open_log(str(log), append=True) as f:
        f.write("two\n")
    assert log.read_text() == "one\ntwo\n"


def test_train_iwae_ends_with_a_message_when_its_output_is_a_link(arm, tmp_path, victim):
    from latent_geodesics.model.training import main
    data = tmp_path / "arm.npy"
    np.save(data, arm.data[:400])
    out = tmp_path / "model"
    out.mkdir()
    os.symlink(victim, out / "model.yaml")
    with pytest.raises(SystemExit) as ended:
        main(["--data", str(data), "--out", str(out), "--epochs", "1", "--latent-dim", "2",
              "--device", "cpu", "--quiet"])
    assert "train_iwae: the model was not written: " in str(ended.value.code)
    assert "model.yaml is a symbolic link" in str(ended.value.code)
    assert victim.read_bytes() == VICTIM
