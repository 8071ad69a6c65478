"""``python -m vecml_async.emulator``: run the emulator in the foreground."""

import sys

from vecml_async.emulator.command import main

if __name__ == "__main__":
    sys.exit(main())
