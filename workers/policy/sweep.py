"""What the sweeper does with a job whose next step is overdue. Pure."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from wanedit.states import Status

if TYPE_CHECKING:
    from wanedit.jobs import Job


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
    if job.status.terminal:
        return Redrive.FORGET
    if job.status is Status.QUEUED and job.create_sent_at is None:
        return Redrive.FORGET  # never sent: admission serves it
    if job.redrives >= max_losses:
        return Redrive.GIVE_UP
    if job.status is Status.QUEUED:
        return Redrive.RECONCILE
    if job.provider_status == "SUCCEEDED":
        return Redrive.FINISH
    return Redrive.POLL
