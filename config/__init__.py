"""wanedit's configuration: one settings class and the Celery configuration built from it."""

from wanedit.config.settings import Settings, get_settings, load_settings

__all__ = ["Settings", "get_settings", "load_settings"]
