"""Shared fixtures: small data sets and models trained once per test session."""
import numpy as np
import pytest
import torch

from latent_geodesics.data import arm_dataset
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.training import train_iwae


@pytest.fixture(scope="session")
def arm():
    return arm_dataset(n_demos=120, seed=3)


@pytest.fixture(scope="session")
def arm_model(arm):
    model, report = train_iwae(arm.data, arm.joint_names, epochs=60, seed=0,
                               device="cpu", progress=False)
    model.report = report
    return model


@pytest.fixture(scope="session")
def arm_model_dir(arm_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "arm"
    save_model(arm_model, str(path), arm_model.meta)
    return str(path)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def curved():
    """Six curved skills of a 7-joint arm (the chord and the demonstrations differ)."""
    from latent_geodesics.sim.skills import curved_skills
    return curved_skills(n=2400)


@pytest.fixture(scope="session")
def curved_model_dir(curved, tmp_path_factory):
    model, _ = train_iwae(curved.data, curved.joint_names, latent_dim=4, seed=0,
                          device="cpu", progress=False)
    path = tmp_path_factory.mktemp("models") / "curved"
    save_model(model, str(path), model.meta)
    return str(path)
