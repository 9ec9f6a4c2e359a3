"""``python -m segue``: the same as the ``segue`` command."""

from segue._entry import main

main()
