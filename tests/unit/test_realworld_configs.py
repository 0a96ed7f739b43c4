"""Real-world configs that the Go adapter v0.12.0 starts with load here, without errors.

They are read from ../shared/realworld-configs/ (see harness.realworld); the tests skip when
that folder is absent. Warnings are allowed: each is reported as a ConfigWarning, which
pytest lists in its warnings summary.
"""

import warnings
from pathlib import Path

import pytest

from adapter.config.errors import ConfigError
from adapter.naming.rules import load_rules
from harness.realworld import REALWORLD_CONFIG_DIR, realworld_configs

CONFIGS = realworld_configs()


class ConfigWarning(UserWarning):
    """A load-time warning of a real-world config."""


@pytest.mark.skipif(not CONFIGS, reason=f"{REALWORLD_CONFIG_DIR} is absent")
def test_the_folder_holds_the_fifteen_configs() -> None:
    assert len(CONFIGS) == 15


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_realworld_config_loads_without_errors(path: Path) -> None:
    try:
        compiled = load_rules(path)
    except ConfigError as exc:
        pytest.fail(exc.describe())
    config = compiled.config
    # Every rule is compiled: none is dropped for a problem only found at request time.
    assert len(compiled.rules) == len(config.rules)
    assert len(compiled.external_rules) == len(config.external_rules)
    assert (compiled.resource_rules is None) == (config.resource_rules is None)
    for warning in compiled.warnings:
        warnings.warn(warning.format(path.name), ConfigWarning, stacklevel=1)
