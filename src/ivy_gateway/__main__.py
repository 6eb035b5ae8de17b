"""``python -m ivy_gateway`` is the ``ivy-gateway`` command."""

from ivy_gateway.cli import main

main()
