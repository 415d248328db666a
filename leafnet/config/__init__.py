"""Every setting of a leafnet run, as dataclasses, with YAML loading and validation.

Defaults live in the dataclasses (``schema``) and nowhere else. Precedence: built-in
defaults < ``--config`` YAML < explicit flags and ``--set section.key=value`` (``load``).
Unknown keys, wrong types and impossible values are refused before any work starts, with
one line naming the key, what is allowed and what was received (``keys``, ``checks``).

Example:
    >>> cfg = load_config(None, overrides=["transfer.lr=3e-4", "model.backbone=b0"])
    >>> cfg.transfer.lr
    0.0003
"""

from leafnet.config.checks import has_data_source, mlp_units, validate
from leafnet.config.defaults import FINETUNE_PLATEAU_PATIENCE, resolve_defaults
from leafnet.config.keys import apply_dict
from leafnet.config.load import config_from_dict, load_config, parse_override
from leafnet.config.reference import describe
from leafnet.config.schema import (SECTIONS, AugmentConfig, Config, DataConfig, ModelConfig, PhaseConfig,
                                   RunConfig, setting)
from leafnet.config.yamlfile import SafeLoader, read_yaml, safe_load
from leafnet.errors import ConfigError

__all__ = [
    "AugmentConfig", "Config", "ConfigError", "DataConfig", "FINETUNE_PLATEAU_PATIENCE", "ModelConfig",
    "PhaseConfig", "RunConfig", "SECTIONS", "SafeLoader", "apply_dict", "config_from_dict", "describe",
    "has_data_source", "load_config", "mlp_units", "parse_override", "read_yaml", "resolve_defaults",
    "safe_load", "setting", "validate",
]
