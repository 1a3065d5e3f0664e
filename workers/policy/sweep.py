"""What the sweeper does with a job whose next step is overdue. Pure.

A step is overdue when its message is late (a backed-up queue) or lost (it died with a killed
worker, or was never sent). The sweeper cannot tell the two apart for the job's own message, so
it sends the step again and notes when (`redrive_at`). Only that message of its own tells: if a
step of the job started since, the job is moving (its count of losses starts again from 0); if
none did while the queue holds no waiting message, that message was lost (one more loss); while
messages wait in the queue, it may simply not have had its turn yet, and the sweeper waits.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from wanedit.store.record import Phase

if TYPE_CHECKING:
    from wanedit.store.record import Job


class Redrive(Enum):
    """The sweeper's answer for one overdue job."""

    FORGET = "forget"  # nothing is owed (ended, or admission serves it): leave the due index
    WAIT = "wait"  # the step it sent last may still be waiting its turn in a backed-up queue
    GIVE_UP = "give up"  # its next step was lost too often: end the job
    POLL = "poll"
    FINISH = "finish"
    RECONCILE = "reconcile"

    @property
    def sends(self) -> bool:
        """Whether the answer sends a step again."""
        return self in (Redrive.POLL, Redrive.FINISH, Redrive.RECONCILE)


def _outstanding(job: Job) -> bool:
    """A re-drive was sent and no step of the job has started since."""
    return job.redrive_at is not None and (job.stepped_at or 0.0) < job.redrive_at


def losses(job: Job, *, backed_up: bool) -> int:
    """The job's lost re-drives in a row, as this sweep finds them: one more when the step the
    sweeper sent last never ran although the queue has no message waiting; none once any step
    of the job ran after it."""
    if job.redrive_at is None:
        return job.losses
    if not _outstanding(job):
        return 0  # a step ran since the last re-drive: progress
    return job.losses if backed_up else job.losses + 1


def redrive_step(job: Job, max_losses: int, *, backed_up: bool = False) -> Redrive:
    """The step to send again for an overdue job. `backed_up`: the queue holds messages that no
    worker has taken yet, so a message sent earlier may still be waiting for its turn."""
    phase = job.phase
    if phase in (Phase.TERMINAL, Phase.QUEUED, Phase.ADMITTED):
        return Redrive.FORGET  # ended, or never sent: admission serves it
    if backed_up and _outstanding(job):
        return Redrive.WAIT
    if phase in (Phase.SUBMITTED, Phase.RUNNING):
        # Its provider task may be alive and billed: it keeps being polled, however late the
        # polls are (a poll that runs ends it at the poll deadline).
        return Redrive.POLL
    if losses(job, backed_up=backed_up) >= max_losses:
        return Redrive.GIVE_UP
    return Redrive.RECONCILE if phase is Phase.CREATING else Redrive.FINISH
