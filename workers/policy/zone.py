"""Which zone an account's provider times are read in. Pure.

A configured offset (the account's `utc_offset`, or WANEDIT_PROVIDER_UTC_OFFSET when it is set)
wins; else the one measured from the account's own answers; else Beijing time, as the
provider's documentation shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wanedit.provider_time import BEIJING_UTC_OFFSET


class ZoneSource(StrEnum):
    CONFIGURED = "configured"
    LEARNED = "learned"
    DEFAULT = "default"


@dataclass(frozen=True)
class ZoneChoice:
    offset: float
    source: ZoneSource


def choose(configured: float | None, learned: float | None) -> ZoneChoice:
    """The zone to read the account's provider times in, and where it comes from."""
    if configured is not None:
        return ZoneChoice(float(configured), ZoneSource.CONFIGURED)
    if learned is not None:
        return ZoneChoice(float(learned), ZoneSource.LEARNED)
    return ZoneChoice(BEIJING_UTC_OFFSET, ZoneSource.DEFAULT)


def disagrees(configured: float | None, learned: float | None) -> bool:
    """Whether a configured zone contradicts the measured one (worth one warning)."""
    return configured is not None and learned is not None and configured != learned
