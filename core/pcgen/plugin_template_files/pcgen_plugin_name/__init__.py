"""The $name model for pcgen."""

from pcgen_plugin_name.config import PluginNameConfig
from pcgen_plugin_name.networks import PluginNameModel

__all__ = ["PluginNameConfig", "PluginNameModel"]
