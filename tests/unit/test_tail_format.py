"""How ``stream-al tail`` shows one message, whatever its bytes: a line a person reads
(strings from the message never interpreted), or a JSON line."""

from __future__ import annotations

import base64
import json

import pytest

from consumers.kafka.tail import FAMILIES, as_json, as_text, model_filter, parse
from stream_al.bus import Message

HOSTILE = "[red]boom[/red]\x1b]0;pwned\x07\n"


def message(value: bytes | None, offset: int = 7) -> Message:
    return Message("t", 2, offset, b"k\x1b", value, timestamp_ms=1_764_633_600_000)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_string_of_every_family_is_shown_as_it_is_on_one_line(family: str) -> None:
    value = {key: HOSTILE for key in ("model_key", "record_id", "predicted", "reason",
                                      "query_id", "label", "labeler", "labeled_at",
                                      "expires_at", "source_topic", "error", "partition",
                                      "offset", "uncertainty", "threshold")}
    line = as_text(family, parse(message(json.dumps(value).encode())))
    assert line.plain.startswith("2025-12-02 00:00:00.000Z 2:7 ")
    assert "[red]boom[/red]␛]0;pwned␇␊" in line.plain  # markup kept literal, controls pictured
    assert "\x1b" not in line.plain and "\n" not in line.plain and "\x07" not in line.plain


def test_a_message_that_is_not_a_json_object_is_named_and_kept_whole_in_json() -> None:
    for raw, problem in ((b"\xff\x00", "not JSON"), (b"[1, 2]", "JSON list, not an object"),
                         (None, "no value (a tombstone)")):
        shown = parse(message(raw))
        assert shown.value is None and shown.problem is not None
        assert shown.problem.startswith(problem)
        assert f"unreadable message ({problem}" in as_text("labels", shown).plain
        row = json.loads(as_json(shown))
        assert row["problem"] == shown.problem
        assert (None if raw is None else base64.b64decode(row["value_b64"])) == raw


def test_json_lines_escape_every_control_and_non_ascii_character() -> None:
    line = as_json(parse(message(json.dumps({"label": HOSTILE + "\u202e"}).encode())))
    assert line.isascii() and "\x1b" not in line and "\n" not in line
    row = json.loads(line)
    assert row["value"]["label"] == HOSTILE + "\u202e"
    assert (row["key"], row["timestamp"]) == ("k\x1b", "2025-12-02T00:00:00.000Z")


def test_the_model_filter_keeps_only_that_models_readable_messages() -> None:
    keep = model_filter("A")
    assert keep(parse(message(b'{"model_key": "A"}')))
    assert not keep(parse(message(b'{"model_key": "B"}')))
    assert not keep(parse(message(b"not json")))
    assert model_filter(None)(parse(message(b"not json")))
