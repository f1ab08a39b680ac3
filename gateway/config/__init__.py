"""Gateway configuration: one YAML file, validated once, into typed sections.

The file is read by :mod:`.loader`, each section is a pydantic model in its
own module (:mod:`.services`, :mod:`.consumers`, :mod:`.policies`,
:mod:`.blueprints`, gathered by :mod:`.model`), references between sections
are checked by :mod:`.checks`, and :mod:`.problems` turns every mistake into
``key.path: what is wrong and what was expected``. The JSON Schema of the file
is ``GatewayConfig.model_json_schema()`` (``gateway schema``).
"""

from .blueprints import BlueprintConfig
from .checks import RESERVED_PATHS
from .consumers import ConsumerConfig, hash_key
from .loader import DEFAULT_CONFIG_PATH, load_config, parse_config
from .model import GatewayConfig
from .policies import BreakerConfig, CacheConfig, CorsConfig, RoutePolicies
from .problems import ConfigError
from .services import ServiceConfig, Timeout
from .types import ALL_METHODS, IPNetwork

__all__ = [
    "ALL_METHODS", "DEFAULT_CONFIG_PATH", "RESERVED_PATHS", "BlueprintConfig", "BreakerConfig",
    "CacheConfig", "ConfigError", "ConsumerConfig", "CorsConfig", "GatewayConfig", "IPNetwork",
    "RoutePolicies", "ServiceConfig", "Timeout", "hash_key", "load_config", "parse_config",
]
