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


#: Files the README names that the project has not got, and where the reader gets them:
#: made by a command the README shows (which must still be shown), or Kafka's own.
MADE_BY = {"demo-out/learning-curve.png": "make demo",
           "state_dir/desk-users.json": "stream-al desk users add"}
KAFKAS_OWN = {"kafka-acls.sh", "admin.properties"}
FILE_NAME = re.compile(r"[\w~./<>*-]+\.(?:stdf|std|gz|csv|jsonl|ndjson|json|ya?ml|toml|png"
                       r"|bin|key|txt|md|py|sh|properties|pem|crt)\b")


def _project_files() -> set[str]:
    """Every file of the checkout, by path and by bare name (hidden folders aside)."""
    found: set[str] = set()
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts[:-1]):
            found.update({relative.as_posix(), path.name})
    return found


def _placeholder(name: str) -> bool:
    """``F.csv``, ``LOT.stdf.gz``: a metavariable, the reader's own file."""
    stem = name.split("/")[-1].split(".")[0]
    return stem.replace("_", "").isupper()


def test_it_names_no_file_outside_the_project() -> None:
    assert "../" not in README
    assert "DESIGN.md" not in README
    project = _project_files()
    for name in set(FILE_NAME.findall(README)):
        if name.startswith(".") or name.startswith("/") or _placeholder(name) \
                or name in KAFKAS_OWN:
            continue  # a suffix, the reader's own configuration, or Kafka's tool
        if name in MADE_BY:
            assert MADE_BY[name] in README, f"{name}: made by {MADE_BY[name]}, not shown"
            continue
        assert name in project, f"the README names {name}, which a user does not have"
    for doc in (ROOT / "docs").glob("*.md"):
        text = doc.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "../shared" not in text, doc.name
