"""An API gateway for Python teams: Flask blueprints in front of backend HTTP services.

``create_app(config)`` is the one entry point; ``wsgi.py`` calls it.
"""

from .app import create_app
from .config import ConfigError, GatewayConfig, ServiceConfig, load_config

__all__ = ["create_app", "load_config", "ConfigError", "GatewayConfig", "ServiceConfig"]
