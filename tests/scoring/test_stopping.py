"""Where a sequence's text ends: the stop strings a client gave never reach it."""

from __future__ import annotations

from distilgpt2_scoring.stopping import cut_at_stop


def test_the_text_ends_before_the_first_stop_string():
    assert cut_at_stop(" hello there! again", ("!", "lo")) == " hel"
    assert cut_at_stop(" hello", ()) == " hello"
