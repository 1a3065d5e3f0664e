"""API keys, the main accounts they belong to, and the non-secret ids the task list shows.

docs/dashscope.md: quotas (5 submits/s, 5 tasks at once, 20 queries/s) are "per Alibaba Cloud main
account (all its keys, users and workspaces summed) ... Two keys of one main account share one
quota", and the task list "lists every task of the main account, whichever key created it".

``SandboxConfig.main_accounts`` groups keys into main accounts; a key of ``api_keys`` in no group
is a main account of its own. A main account is named after its first key (in ``/sandbox/stats``
only: that endpoint is the sandbox's own).

The ids in list rows are sandbox choices (the docs show only their names and, in the official
Java SDK's tests, decimal strings): ``api_key_id`` is a decimal string derived from the key by a
hash, never the key; ``caller_parent_id`` is the main account's uid; ``caller_uid`` is the uid of
the key's user, where a group's first key (and a key of its own) belongs to the main account
itself, so its ``caller_uid`` equals ``caller_parent_id``, and the other keys look like RAM users.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


class Accounts:
    """Which main account each accepted key belongs to."""

    def __init__(self, api_keys: Iterable[str], groups: Iterable[Iterable[str]] = ()) -> None:
        self._main: dict[str, str] = {}
        for group in groups:
            keys = list(group)
            for key in keys:
                if key in self._main:
                    raise ValueError("main_accounts: a key may belong to one main account only")
                self._main[key] = keys[0]
        for key in api_keys:
            self._main.setdefault(key, key)

    def main_of(self, key: str) -> str | None:
        """The main account of an accepted key; None for a key the sandbox does not know."""
        return self._main.get(key)

    def names(self) -> list[str]:
        """Every main account, once."""
        return list(dict.fromkeys(self._main.values()))


def _digits(kind: str, text: str, length: int) -> str:
    digest = hashlib.sha256(f"wanedit-sandbox:{kind}:{text}".encode()).digest()
    low = 10 ** (length - 1)
    return str(low + int.from_bytes(digest[:8], "big") % (9 * low))


def api_key_id(key: str) -> str:
    """A stable, non-secret id of an API key."""
    return _digits("api_key_id", key, 8)


def uid(name: str) -> str:
    """A stable 16-digit user id for a key or a main account's name."""
    return _digits("uid", name, 16)


def keys_arg(value: Any, current: frozenset[str]) -> frozenset[str]:
    """`arrears_keys` of a runtime change: a list of keys or a comma-separated string (empty:
    none); absent, the current ones. Raises ValueError naming the field."""
    if value is None:
        return current
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("arrears_keys: must be a list of API keys or a comma-separated string.")
    return frozenset(v.strip() for v in value if v.strip())
