"""`python -m reelqueue` runs the command line."""

from reelqueue.cli import main

main()
