"""What the provider bills for a job whose task (or create) has ended: one rule. Pure.

The daily spend reserves a job's images at admission; giving its slot back corrects the spend to
what was billed, once, by the first call that knows it. None means not known yet: the
reservation stands until a later call knows better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wanedit.store.record import Job

# Provider task states that bill nothing.
UNBILLED = frozenset({"FAILED", "CANCELED"})


def billed(status: str | None, image_count: int | None, *, sent: bool = True) -> int | None:
    """Images billed for a task last seen in `status` (`image_count`: what it reported).

    A create never sent (or that made no task) bills nothing; a task that failed or was
    canceled bills nothing; a task that succeeded bills the images it reports; anything else
    (still running, unknown to the provider, an answer lost) is not known yet."""
    if status == "SUCCEEDED":
        return image_count
    if status in UNBILLED or not sent:
        return 0
    return None


def billed_so_far(job: Job) -> int | None:
    """The rule applied to what the job record knows."""
    return billed(
        job.provider_status,
        (job.usage or {}).get("image_count"),
        sent=job.create_sent_at is not None or job.provider_task_id is not None,
    )
