"""The README as a new user reads it: the command reachable after ``make demo``, options
through make, the right number of topics, and nothing it points at that a user lacks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from consumers.kafka.topics import topic_plan
from stream_al.topics import TopicNames

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def test_it_says_where_the_command_is_after_make_demo() -> None:
    assert ".venv/bin/stream-al" in README
    assert "source .venv/bin/activate" in README
    assert 'make demo ARGS="--records 5000' in README


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("target", "script"), [("demo", "scripts/demo"),
                                                ("test", "scripts/test")])
def test_make_passes_args_through(target: str, script: str) -> None:
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), target, "ARGS=--records 5000"],
                         capture_output=True, text=True, check=True)
    assert f"{script} --records 5000" in dry.stdout.splitlines()
    bare = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True,
                          text=True, check=True)
    assert script in [line.strip() for line in bare.stdout.splitlines()]


def test_the_number_of_topics_it_names_is_the_number_topics_create_makes() -> None:
    count = len(topic_plan(TopicNames()))
    said = re.findall(r"\bthe (two|three|four|five|six|seven|eight) topics\b", README)
    assert said, "the README no longer says how many topics there are"
    assert set(said) == {WORDS[count]}


def test_it_links_the_benchmarks_and_every_link_resolves() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert "docs/benchmarks.md" in local
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_it_names_no_file_outside_the_project() -> None:
    assert "../" not in README
    assert "DESIGN.md" not in README
    for doc in (ROOT / "docs").glob("*.md"):
        text = doc.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "../shared" not in text, doc.name
