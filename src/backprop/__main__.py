"""``python -m backprop ...`` runs the command line (see :mod:`backprop.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
