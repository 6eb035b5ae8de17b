"""``python -m ivy_gateway.loadtest ROLE JSON``: a child process of the load benchmark."""

import sys

from .children import child_main

child_main(sys.argv[1:])
