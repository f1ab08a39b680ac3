"""``gateway admin``: the Admin API alone, ``gunicorn gateway.admin.wsgi:app``."""

from ..config import ConfigError, load_config
from ..db import open_engine
from ..routing import CONFIG_CHECKS, route_names
from .api import create_admin_app

try:
    _config = load_config(checks=CONFIG_CHECKS)
except ConfigError as error:
    raise SystemExit(str(error)) from None
app = create_admin_app(_config, open_engine(_config.database or "", _config.source),
                       route_names(_config))
