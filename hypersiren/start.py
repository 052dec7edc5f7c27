"""Imported first by every program, before torch: Ctrl-C in the seconds the imports take ends the program as
``cli.exits_cleanly`` ends it later (``interrupted``, exit 130), not with a traceback of torch's import machinery.

``exits_cleanly`` puts Python's own handler back when ``main`` starts, so that from there on Ctrl-C raises
KeyboardInterrupt and each program says what it stopped. Kept apart from the package's other modules and
free of imports beyond the standard library, so that it takes effect at once.
"""

import os
import signal
import sys


def exit_interrupted(signal_number: int, frame: object) -> None:
    sys.stderr.write("interrupted\n")
    os._exit(130)  # 128 + SIGINT, as cli.INTERRUPTED_EXIT_CODE; nothing has been written yet to flush or clean


signal.signal(signal.SIGINT, exit_interrupted)
