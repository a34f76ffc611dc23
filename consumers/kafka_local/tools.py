"""Find Java 17+ and Maven, and say exactly what to install when they are absent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from consumers.kafka_local.errors import ToolMissing

MIN_JAVA = 17
_INSTALL_HINT = "e.g. `apt-get install openjdk-17-jre-headless maven`"
_VERSION_RE = re.compile(r'version "(?P<version>[^"]+)"')


def java_major(version_output: str) -> int:
    """Major Java version from ``java -version`` output ("1.8.0_392" → 8, "17.0.15" → 17).

    >>> java_major('openjdk version "17.0.15" 2025-04-15')
    17
    >>> java_major('java version "1.8.0_392"')
    8
    """
    match = _VERSION_RE.search(version_output)
    if match is None:
        raise ValueError(f"no Java version in {version_output!r}")
    parts = re.split(r"[._+-]", match["version"])
    return int(parts[1]) if parts[0] == "1" else int(parts[0])


def find_java() -> Path | None:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else None


def _java_problem(java: Path | None) -> str | None:
    if java is None:
        return f"Java {MIN_JAVA}+ (no `java` on PATH or in JAVA_HOME)"
    out = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    try:
        major = java_major(out.stderr + out.stdout)
    except ValueError:
        return f"Java {MIN_JAVA}+ (`{java} -version` printed no version)"
    return None if major >= MIN_JAVA else f"Java {MIN_JAVA}+ ({java} is Java {major})"


def require_tools(*, need_maven: bool) -> Path:
    """Return the java executable; raise ToolMissing naming everything absent.

    Maven is needed only for the one-time download, so a warm cache runs without it.
    """
    java = find_java()
    problems = [p for p in (_java_problem(java),) if p]
    if need_maven and shutil.which("mvn") is None:
        problems.append("Maven (no `mvn` on PATH; needed once to download the Kafka jars)")
    if problems:
        raise ToolMissing(f"missing: {'; '.join(problems)}. Install them, {_INSTALL_HINT}.")
    assert java is not None
    return java


def require_openssl() -> str:
    """The openssl executable, which makes the secured broker's certificates."""
    found = shutil.which("openssl")
    if found is None:
        raise ToolMissing("missing: openssl (makes the secured broker's test CA). "
                          "Install it, e.g. `apt-get install openssl`.")
    return found
