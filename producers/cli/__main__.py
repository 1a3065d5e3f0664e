"""`python -m wanedit.producers.cli`: the `wanedit` console script."""

from wanedit.producers.cli import main

main()
