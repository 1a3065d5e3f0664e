"""The designs `make bench` can run, by name: which harness runs each and how it is set up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Design:
    """One column of the report.

    ``runner`` is ``"wanedit"`` (the product's worker) or ``"naive"`` (``bench.naive``).
    ``events`` turns the provider's pushed "task finished" events on: the sandbox posts them to
    a ``wanedit provider-events`` receiver and the worker runs with
    ``WANEDIT_PROVIDER_EVENTS=true``. ``event_loss_rate`` is the share of events the sandbox
    drops.
    """

    name: str
    runner: str
    events: bool = False
    event_loss_rate: float = 0.0
    summary: str = ""


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (
        Design(
            "wanedit-events",
            "wanedit",
            events=True,
            summary="wanedit with the provider's task-finished events on",
        ),
        Design("wanedit", "wanedit", summary="wanedit as by default: it looks (list watch, polls)"),
        Design("naive", "naive", summary="one Celery task per edit blocking on the SDK's call"),
        Design(
            "events-10pct-lost",
            "wanedit",
            events=True,
            event_loss_rate=0.1,
            summary="wanedit-events with 10% of the events dropped by the sandbox",
        ),
    )
}


def pick(text: str | None) -> list[Design]:
    """The designs named in ``--only`` (comma-separated), in the order given; all when None."""
    if text is None:
        return list(DESIGNS.values())
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DESIGNS]
    if unknown:
        raise ValueError(
            f"--only: unknown design {', '.join(map(repr, unknown))}; "
            f"the designs are {', '.join(DESIGNS)}"
        )
    if not names:
        raise ValueError(f"--only: name at least one design of {', '.join(DESIGNS)}")
    return [DESIGNS[name] for name in dict.fromkeys(names)]
