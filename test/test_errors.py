"""One error hierarchy: every error the package raises on purpose is an Error (and a
ValueError, as callers caught before), configuration apart from requests."""
import pytest

from latent_geodesics import errors
from latent_geodesics.data.loaders import DataError
from latent_geodesics.geometry.curves import PointError
from latent_geodesics.graph.latent_graph import GraphError
from latent_geodesics.learning.loop import LoopConfig
from latent_geodesics.learning.store import StoreError
from latent_geodesics.model.iwae import ModelError
from latent_geodesics.serving.engine import RequestError, Settings
from latent_geodesics.serving.robot_state import StateError
from latent_geodesics.serving.trajectory import LimitError


def test_every_module_raises_the_one_hierarchys_classes():
    for cls in (PointError, DataError, RequestError, GraphError, ModelError, StateError,
                StoreError, LimitError):
        assert cls.__module__ == "latent_geodesics.errors"
        assert issubclass(cls, errors.Error) and issubclass(cls, ValueError)
    assert issubclass(StateError, RequestError) and issubclass(PointError, RequestError)
    assert not issubclass(GraphError, PointError)   # a corrupt file is not a bad point


@pytest.mark.parametrize("make", [lambda: Settings(k=0).validate(),
                                  lambda: LoopConfig(rounds=0).validate(),
                                  lambda: LoopConfig(teacher_timeout=True).validate()])
def test_settings_problems_are_config_errors(make):
    with pytest.raises(errors.ConfigError, match="parameter"):
        make()


@pytest.mark.parametrize("value,ok", [(1, True), (2.5, True), (True, False), ("1", False),
                                      (float("nan"), False), (float("inf"), False)])
def test_is_number(value, ok):
    assert errors.is_number(value) is ok


def test_check_number_names_the_parameter_and_the_bound():
    assert errors.check_number("k", 3, low=1, integer=True) == 3
    with pytest.raises(errors.ConfigError, match=r"parameter k must be an integer >= 1, not 0"):
        errors.check_number("k", 0, low=1, integer=True)
    with pytest.raises(errors.ConfigError, match="parameter v must be a positive number"):
        errors.check_number("v", -1.0, above=0)
