"""``python -m consumers`` runs the ``stream-al`` command line."""

from consumers.cli import main

main()
