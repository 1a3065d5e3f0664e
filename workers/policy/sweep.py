"""What the sweeper does with a job whose next step is overdue. Pure."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from wanedit.store.record import Phase

if TYPE_CHECKING:
    from wanedit.store.record import Job


class Redrive(Enum):
    """The sweeper's answer for one overdue job."""

    FORGET = "forget"  # nothing is owed (ended, or admission serves it): leave the due index
    GIVE_UP = "give up"  # its next step was lost too often: end the job
    POLL = "poll"
    FINISH = "finish"
    RECONCILE = "reconcile"

    @property
    def sends(self) -> bool:
        """Whether the answer sends a step again."""
        return self in (Redrive.POLL, Redrive.FINISH, Redrive.RECONCILE)


def redrive_step(job: Job, max_losses: int) -> Redrive:
    """The step to send again for a job whose message was lost (with a killed worker, say)."""
    phase = job.phase
    if phase in (Phase.TERMINAL, Phase.QUEUED, Phase.ADMITTED):
        return Redrive.FORGET  # ended, or never sent: admission serves it
    if job.redrives >= max_losses:
        return Redrive.GIVE_UP
    if phase is Phase.CREATING:
        return Redrive.RECONCILE
    if phase is Phase.FINISHING:
        return Redrive.FINISH
    return Redrive.POLL
