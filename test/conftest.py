"""Shared fixtures: small data sets and models trained once per test session."""
import numpy as np
import pytest
import torch

from latent_geodesics.data import arm_dataset
from latent_geodesics.model import save_model
from latent_geodesics.training import train_iwae


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
