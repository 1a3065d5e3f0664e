"""The enqueue path shared by the producers and the workers: validate, stage, record, queue.

It sits above the settings and below both front doors (`wanedit.producers`) and the workers'
`wanedit.enqueue` and `wanedit.batch` tasks, which call it; it imports neither.
"""

from wanedit.intake.submit import enqueue_message, record_rejection, submit_edit, submit_many

__all__ = ["enqueue_message", "record_rejection", "submit_edit", "submit_many"]
