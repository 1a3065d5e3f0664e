"""Celery workers: submit to the provider, poll with countdowns, finish into S3."""

from wanedit.config.settings import get_settings as _get_settings
from wanedit.errors import ConfigError as _ConfigError

try:
    _get_settings()
except _ConfigError as _exc:  # a bad setting is one line at start-up, not a traceback
    raise SystemExit(f"wanedit: {_exc}") from None

from wanedit.workers.app import app

__all__ = ["app"]
