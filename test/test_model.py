"""The IWAE: shapes, devices, the bound, and its model directory."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from latent_geodesics.model.iwae import IWAE, ModelError, load_model, resolve_device, save_model


def test_shapes_and_device(arm_model):
    z = torch.zeros(5, 2)
    assert arm_model.decode(z).shape == (5, 7)
    assert arm_model.decode_std(z).shape == (5, 7)
    assert arm_model.encode(torch.zeros(3, 7)).shape == (3, 2)
    assert arm_model.device.type == "cpu"
    assert arm_model.latents.shape[1] == 2


def test_device_auto_picks_what_is_there():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ModelError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")


def test_decoder_speaks_data_units(arm_model, arm):
    x = torch.as_tensor(arm.data[:200], dtype=torch.float32)
    recon = arm_model.decode(arm_model.encode(x))
    # Radians, not normalised units: the error is small against the joint ranges.
    assert (recon - x).abs().mean() < 0.2 * torch.as_tensor(arm.data.std(0)).max()


def test_more_importance_samples_tighten_the_bound(arm_model, arm):
    x = arm_model.normalise(torch.as_tensor(arm.data[:1000], dtype=torch.float32))
    torch.manual_seed(1)
    k1 = torch.stack([arm_model.iwae_bound(x, samples=1) for _ in range(5)]).mean()
    k20 = torch.stack([arm_model.iwae_bound(x, samples=20) for _ in range(5)]).mean()
    assert k20 >= k1


def test_save_load_is_bit_identical(arm_model, arm_model_dir):
    loaded = load_model(arm_model_dir, "cpu")
    z = torch.randn(64, 2)
    assert torch.equal(loaded.decode(z), arm_model.decode(z))
    assert np.array_equal(loaded.latents, arm_model.latents)
    assert loaded.joint_names == arm_model.joint_names
    meta = yaml.safe_load(Path(os.path.join(arm_model_dir, "model.yaml")).read_text())
    assert len(meta["data_sha256"]) == 64 and meta["training"]["epochs"] == 60


def test_noise_floor_is_kept_and_older_files_load_without_it(arm_model, arm_model_dir,
                                                            tmp_path):
    assert load_model(arm_model_dir, "cpu").noise_floor == arm_model.noise_floor == 0.05
    old = copy_dir(arm_model_dir, tmp_path)
    meta = yaml.safe_load(Path(old / "model.yaml").read_text())
    del meta["noise_floor"]
    Path(old / "model.yaml").write_text(yaml.safe_dump(meta))
    assert load_model(str(old), "cpu").noise_floor == 0.0
    # The floor bounds the decoder's std from below in every joint, in data units.
    std = arm_model.decode_std(torch.randn(256, 2))
    assert (std >= 0.05 * arm_model.x_std.max() * 0.999).all()


def copy_dir(src, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(src, dst)
    return dst


def edit_yaml(d, **changes):
    meta = yaml.safe_load(Path(d / "model.yaml").read_text())
    meta.update(changes)
    Path(d / "model.yaml").write_text(yaml.safe_dump(meta))


BROKEN = {
    "missing directory": (lambda d: shutil.rmtree(d), "does not exist"),
    "missing yaml": (lambda d: os.remove(d / "model.yaml"), "model.yaml is missing"),
    "yaml not yaml": (lambda d: Path(d / "model.yaml").write_text("{: ["), "not valid YAML"),
    "yaml lacks keys": (lambda d: Path(d / "model.yaml").write_text("x_dim: 7\n"), "lacks"),
    # 60 MB of metadata blocked ~reload for minutes: refused by its size, unread.
    "huge yaml": (lambda d: Path(d / "model.yaml").write_text(
        Path(d / "model.yaml").read_text() + "padding: '%s'\n" % ("x" * 9_000_000)),
        "more than a model's metadata can be"),
    "missing weights": (lambda d: os.remove(d / "weights.pt"), "lacks weights.pt"),
    "truncated weights": (lambda d: os.truncate(d / "weights.pt", 100),
                          "truncated or corrupt"),
    "missing latents": (lambda d: os.remove(d / "latents.npy"), "lacks latents.npy"),
    "inconsistent names": (lambda d: edit_yaml(d, joint_names=["a", "b"]), "inconsistent"),
    "wrong architecture": (lambda d: edit_yaml(d, hidden=[16, 16]), "does not fit"),
    "wrong version": (lambda d: edit_yaml(d, format_version=99), "format_version"),
    "files without weights": (lambda d: edit_yaml(d, files={"latents.npy": "0" * 64}),
                              "sha256 of weights.pt"),
    "files null": (lambda d: edit_yaml(d, files=None), "sha256 of weights.pt"),
    "relu": (lambda d: edit_yaml(d, activation="relu"), "twice differentiable"),
    "negative width": (lambda d: edit_yaml(d, hidden=[-5]), "layer widths"),
    "huge layers": (lambda d: edit_yaml(d, hidden=[20000, 20000]), "layer widths"),
    "wide and many": (lambda d: edit_yaml(d, hidden=[8000] * 3), "parameters"),
    "names as a string": (lambda d: edit_yaml(d, joint_names="abcdefg"), "list of names"),
    "repeated names": (lambda d: edit_yaml(d, joint_names=["a"] * 7), "distinct"),
    "zero std": (lambda d: edit_yaml(d, x_std=[0.0] * 7), "x_std must be positive"),
    "string x_dim": (lambda d: edit_yaml(d, x_dim="7"), "x_dim must be an integer"),
    "noise floor of 1": (lambda d: edit_yaml(d, noise_floor=1.0), "noise_floor must be"),
    "identical latents": (lambda d: _write_latents(d, np.zeros((50, 2), np.float32)),
                          "fewer than 2 distinct"),
}


def _write_latents(d, latents):
    from latent_geodesics.model.iwae import sha256_file
    np.save(d / "latents.npy", latents)
    meta = yaml.safe_load(Path(d / "model.yaml").read_text())
    meta["files"]["latents.npy"] = sha256_file(str(d / "latents.npy"))
    Path(d / "model.yaml").write_text(yaml.safe_dump(meta))


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_model_directory_gives_clear_error(case, arm_model_dir, tmp_path):
    d = copy_dir(arm_model_dir, tmp_path)
    breaker, fragment = BROKEN[case]
    breaker(d)
    with pytest.raises(ModelError, match=fragment):
        load_model(str(d), "cpu")


def test_corrupt_weights_with_matching_checksum_are_refused(arm_model_dir, tmp_path):
    from latent_geodesics.model.iwae import sha256_file
    d = copy_dir(arm_model_dir, tmp_path)
    Path(d / "weights.pt").write_bytes(b"not a torch file")
    meta = yaml.safe_load(Path(d / "model.yaml").read_text())
    meta["files"]["weights.pt"] = sha256_file(str(d / "weights.pt"))
    Path(d / "model.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelError, match="weights.pt"):
        load_model(str(d), "cpu")


def test_activation_must_be_twice_differentiable():
    with pytest.raises(ValueError):
        IWAE(3, 2, activation="relu")
    assert IWAE(3, 2, activation="softplus").decode(torch.zeros(1, 2)).shape == (1, 3)


def test_save_without_latents_is_refused(tmp_path):
    with pytest.raises(ModelError, match="latent means"):
        save_model(IWAE(3, 2), str(tmp_path / "x"))
