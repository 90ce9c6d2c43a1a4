"""``python -m tinyexit ...``."""

import sys

from .cli import main

sys.exit(main())
