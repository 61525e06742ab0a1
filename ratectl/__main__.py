"""``python -m ratectl``: the same as the ``ratectl`` command."""

from ratectl.cli import main

main()
