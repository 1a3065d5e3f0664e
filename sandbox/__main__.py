"""``python -m sandbox``: the same as ``wanedit sandbox``."""

from sandbox.cli import command

if __name__ == "__main__":
    command(prog_name="python -m sandbox")
