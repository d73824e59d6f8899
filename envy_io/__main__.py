"""``python -m envy_io``: the same as ``envy-io``."""

import sys

from envy_io.cli import main

sys.exit(main())
