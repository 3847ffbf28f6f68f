"""How every command-line entry point ends (`python -m probes|components|lab`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

# What a shell reports for a writer the reader left (128 + SIGPIPE): `set -o pipefail` sees it, nothing else prints.
BROKEN_PIPE = 141


def run(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; when the reader went away (`... | head -1`), stop quietly instead of a traceback."""
    try:
        status = main()
        sys.stdout.flush()  # a pipe closed after the last write shows here, not at exit
    except BrokenPipeError:
        # Python would flush stdout again at exit and complain: point it at /dev/null first (the Python docs' recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = BROKEN_PIPE
    sys.exit(status)
