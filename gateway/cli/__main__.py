"""``python -m gateway.cli``: the ``gateway`` command without its console script."""

from . import main

main()
