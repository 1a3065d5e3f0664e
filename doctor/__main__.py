"""`python -m wanedit.doctor`: the same as `wanedit doctor`."""

from wanedit.doctor.cli import command

command()
