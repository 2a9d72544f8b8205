"""``python -m lockgate``: the same as the ``lockgate`` command."""

import sys

from lockgate.cli.main import main

sys.exit(main())
