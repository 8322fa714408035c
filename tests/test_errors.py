"""Messages built from library exceptions and untrusted text: one printable line, never cut mid-word."""

from segdeploy.errors import library_reason, printable, shorten


def test_a_library_message_is_its_first_line_cut_at_a_word_boundary():
    reason = library_reason(ValueError("first line with several words " * 10 + "\nsecond line"))
    assert "\n" not in reason and reason.endswith(" ...") and len(reason) <= 164
    assert reason.removesuffix(" ...").split()[-1] in ("first", "line", "with", "several", "words")  # whole words
    assert library_reason(EOFError()) == "EOFError"


def test_one_value_longer_than_the_limit_is_summarised_not_cut():
    # Found by fuzzing: a 5,000-character value in metadata was cut in the middle of its token.
    assert shorten("x" * 5000, 100) == "a value of 5000 characters"


def test_untrusted_text_cannot_drive_the_terminal():
    assert printable("bad\x1b[31mred\x00 ü 中\n") == "bad\\x1b[31mred\\x00 ü 中\\x0a"
