"""wanedit: Wan 2.5 image edits (DashScope `wan2.5-i2i-preview`) on Celery workers.

The top-level modules of this package are the core: the request contract, errors, statuses,
storage addresses and the rules every part shares. Above it, each importing only what lies
below: `wanedit.store` (Redis), `wanedit.config`, `wanedit.intake` (the enqueue path), then
`wanedit.producers` and `wanedit.workers` side by side, never importing each other, and
`wanedit.sandbox` on top. `lint-imports` checks it.
"""
