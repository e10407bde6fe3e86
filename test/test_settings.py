"""One declaration per setting: the declarations drive validate(), the ROS 1 reading,
the ROS 2 descriptors and the YAML files, which are tested against them here."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from latent_geodesics.errors import ConfigError
from latent_geodesics.learning.loop import LoopConfig
from latent_geodesics.learning.service import LearnerNodeSettings
from latent_geodesics.serving.engine import REQUEST_TIME_SETTINGS, Settings
from latent_geodesics.serving.execution import ExecutionSettings
from latent_geodesics.serving.service import NodeSettings
from latent_geodesics.settings import as_declared, check_value, read, specs, validate

CONFIG = Path(__file__).resolve().parents[1] / "config"
ALL = (Settings, NodeSettings, ExecutionSettings, LoopConfig, LearnerNodeSettings)
# Where a YAML file deliberately differs from the declared default, and why.
YAML_CHOICES = {("active_learner.yaml", "auto"): "the file runs the loop; the node alone "
                                                 "only offers ~select_queries"}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_setting_is_declared_with_a_meaning_and_both_bounds(cls):
    for spec in specs(cls):
        assert len(spec.doc) > 10, spec.name
        if spec.kind in (int, float):   # ROS 2 shows and enforces both ends
            assert (spec.low is not None or spec.positive) and spec.high is not None, \
                spec.name
        assert validate(cls()) is not None


@pytest.mark.parametrize("yaml_file,classes", [
    ("geodesic_server.yaml", (Settings, NodeSettings, ExecutionSettings)),
    ("active_learner.yaml", (LoopConfig, LearnerNodeSettings))])
def test_yaml_files_hold_exactly_the_declared_settings_and_defaults(yaml_file, classes):
    values = yaml.safe_load((CONFIG / yaml_file).read_text())
    declared = {s.name: s for cls in classes for s in specs(cls)}
    optional = {"model_dir", "joint_names", "joint_limits", "store", "initial_data"}
    assert set(values) <= set(declared), sorted(set(values) - set(declared))
    assert set(declared) - optional <= set(values), sorted(set(declared) - set(values))
    for name, value in values.items():
        if (yaml_file, name) not in YAML_CHOICES:
            assert as_declared(value, declared[name].default) == declared[name].default, name
    for cls in classes:
        read(cls, lambda name, default: values.get(name, default))   # validates


def test_runtime_settings_are_the_ones_read_per_request():
    assert set(REQUEST_TIME_SETTINGS) == {s.name for s in specs(Settings) if s.runtime}
    assert "k" not in REQUEST_TIME_SETTINGS and "max_joint_step" in REQUEST_TIME_SETTINGS


@pytest.mark.parametrize("cls,change,fragment", [
    (Settings, dict(k=0), "parameter k must be an integer >= 1 and <= 1000, not 0"),
    (Settings, dict(position_tolerance=1e300), "position_tolerance must be a positive number "
                                               "<= 10"),
    (Settings, dict(device="tpu"), "device must be auto, cpu or cuda"),
    (Settings, dict(metric="l2"), "metric must be one of"),
    (NodeSettings, dict(feedback_every=0), "feedback_every must be an integer >= 1"),
    (ExecutionSettings, dict(allowed_execution_duration_scaling=0.5), "must be a number >= 1"),
    (ExecutionSettings, dict(execution_duration_monitoring="yes"), "must be true or false"),
    (LoopConfig, dict(rounds=True), "rounds must be an integer"),
    (LearnerNodeSettings, dict(server=3), "server must be a str"),
])
def test_values_outside_a_declaration_are_refused_naming_it(cls, change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate(dataclasses.replace(cls(), **change))
    name, value = next(iter(change.items()))
    with pytest.raises(ConfigError, match=name):
        check_value(cls, name, value)


def test_reading_parameters_takes_yaml_integers_for_floats_and_validates():
    params = {"controller_wait": 3, "allowed_start_tolerance": 0}
    settings = read(ExecutionSettings, lambda name, default: params.get(name, default))
    assert settings.controller_wait == 3.0 and isinstance(settings.controller_wait, float)
    params["goal_time_tolerance"] = -1
    with pytest.raises(ConfigError, match="goal_time_tolerance"):
        read(ExecutionSettings, lambda name, default: params.get(name, default))
