"""Library warnings raised while reading untrusted files are logged, not printed."""

import logging
import warnings

from segdeploy.reading import captured_warnings


def test_warnings_inside_are_logged_not_shown(caplog, recwarn):
    with caplog.at_level(logging.DEBUG, logger="segdeploy"), captured_warnings("bad.pt"):
        warnings.warn("Detected pickle protocol 60 in the checkpoint", UserWarning, stacklevel=1)
    assert len(recwarn) == 0  # nothing reached Python's warning display
    assert caplog.messages == ["UserWarning while reading bad.pt: Detected pickle protocol 60 in the checkpoint"]
