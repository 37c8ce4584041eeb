import pytest

from distilgpt2_asset.event_stream import StreamCut, events


def test_events_are_the_data_lines_json_up_to_done():
    lines = [b'data: {"index": 0, "text": "Hi"}', b"", b": a comment", 'data: {"index": 0, "text": " there"}']
    assert list(events([*lines, b"data: [DONE]", b'data: {"after": "done"}'])) == [
        {"index": 0, "text": "Hi"},
        {"index": 0, "text": " there"},
    ]


def test_a_stream_that_ends_without_done_is_cut():
    with pytest.raises(StreamCut):
        list(events([b'data: {"index": 0, "text": "Hi"}']))


def test_an_event_that_is_not_json_is_an_error():
    with pytest.raises(ValueError):
        list(events([b"data: {not json"]))
