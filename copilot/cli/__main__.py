"""``python -m copilot.cli``: the same commands as the ``copilot`` console script."""

from copilot.cli.app import main

main()
