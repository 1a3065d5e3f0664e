"""The I/O choreography of each step: plain functions over the worker context, no Celery.

A step loads its job, asks a pure policy what to do, does one piece of I/O and sends what comes
next through `wanedit.workers.next`. A step that should run again later returns `RetryLater`;
the task shell turns it into a Celery retry.
"""
