"""The `wanedit` console script: one click group, its commands in modules beside this one,
and commands other parts of wanedit register by entry point.

Exit statuses are in `wanedit.producers.cli.exits`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from wanedit.producers.cli import accounts, batch, jobs, listen, ops, provider_events, url
from wanedit.producers.cli.exits import exit_table_text

# Commands other parts of wanedit add (the sandbox, the local stack) come in by entry point, so
# this production CLI never imports them.
PLUGIN_GROUP = "wanedit.commands"


class PluginGroup(click.Group):
    """A click group that also lists the commands registered under PLUGIN_GROUP, loading one
    only when it is run or its help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugins = {point.name for point in entry_points(group=PLUGIN_GROUP)}
        return sorted(set(super().list_commands(ctx)) | plugins)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        for point in entry_points(group=PLUGIN_GROUP, name=name):
            loaded = point.load()
            if isinstance(loaded, click.Command):
                return loaded
        return None


@click.group(
    cls=PluginGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit statuses (docs/usage.md, Exit statuses):\n\n\b\n" + exit_table_text(),
)
@click.version_option(package_name="wanedit", prog_name="wanedit")
def main() -> None:
    """wanedit: Wan 2.5 image edits through Celery workers, results into your S3."""


for _command in (
    jobs.submit,
    jobs.status,
    jobs.cancel,
    jobs.events,
    jobs.schema,
    ops.quota,
    ops.cap,
    ops.top,
    batch.batch,
    batch.batch_status,
    batch.batch_retry,
    batch.batch_cancel,
    batch.batch_export,
    listen.listen,
    provider_events.provider_events,
    url.url,
    accounts.accounts,
):
    main.add_command(_command)

__all__ = ["PLUGIN_GROUP", "PluginGroup", "main"]
