"""``python -m tinyexit ...``."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a worker process (the demo's) imports this module again
    sys.exit(main())
