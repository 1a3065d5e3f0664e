"""``python -m wanedit.sandbox``: the same as ``wanedit sandbox``."""

from wanedit.sandbox.cli import command

if __name__ == "__main__":
    command(prog_name="python -m wanedit.sandbox")
