"""Celery workers: submit to the provider, poll with countdowns, finish into S3.

`celery -A wanedit.workers worker` (or beat) finds the app as `wanedit.workers.app`. It is
built when first asked for, not at import: the pure modules here need no settings and no
Celery. A bad setting then stops the command in one line, not a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wanedit.workers.celery_app import app

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from wanedit.errors import ConfigError

    try:
        from wanedit.workers.celery_app import app
    except ConfigError as exc:
        raise SystemExit(f"wanedit: {exc}") from None
    # Importing the submodule bound `app` here to the module: the name is the Celery app.
    globals()["app"] = app
    return app
