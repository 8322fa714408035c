"""Reading untrusted files: what parsing libraries warn about is recorded, not printed.

A library's warning about a user's file ("Detected pickle protocol 60 ...") is noise on a
terminal that already gets segdeploy's one-line verdict; it goes to the ``segdeploy`` logger
at DEBUG instead, which the CLI shows with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LOGGER = logging.getLogger("segdeploy")


@contextlib.contextmanager
def captured_warnings(what: str) -> Iterator[None]:
    """Record every warning raised inside the block and log each at DEBUG, naming ``what`` was read.

    ``warnings.catch_warnings`` swaps process-wide state: use it around one parse in the calling
    thread, not around work other threads share.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                LOGGER.debug("%s while reading %s: %s", warning.category.__name__, what, warning.message)
