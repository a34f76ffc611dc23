"""Fetch the Apache Kafka broker jars from Maven Central into a cache outside the repo.

Kafka's published POM lacks a logging backend, so a second, tiny resolution adds log4j2
and the slf4j binding that matches the slf4j API Kafka actually pulled; without it the
broker logs nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from consumers.kafka_local.errors import DownloadError
from consumers.kafka_local.locking import file_lock

KAFKA_VERSION = "4.4.0"
#: Used only if Kafka's own dependencies carry no log4j-api (it does since 4.0).
FALLBACK_LOG4J = "2.25.5"
_DEPENDENCY_PLUGIN = "3.8.1"
_MARKER = "libs.complete"


def cache_root() -> Path:
    """``$STREAM_AL_CACHE`` or ``~/.cache/stream-al``: shared by every clone."""
    configured = os.environ.get("STREAM_AL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "stream-al"


def version_dir(version: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "kafka" / version


def render_pom(dependencies: Iterable[tuple[str, str, str]], *, isolated: bool) -> str:
    """A throwaway POM listing (group, artifact, version); ``isolated`` drops transitives."""
    exclusion = (
        "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId>"
        "</exclusion></exclusions>"
        if isolated
        else ""
    )
    deps = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version>{exclusion}</dependency>\n"
        for g, a, v in dependencies
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "<modelVersion>4.0.0</modelVersion>\n"
        "<groupId>local.stream-al</groupId><artifactId>kafka-local-jars</artifactId>"
        "<version>0</version><packaging>pom</packaging>\n"
        f"<dependencies>\n{deps}</dependencies>\n"
        "<build><pluginManagement><plugins><plugin>"
        "<groupId>org.apache.maven.plugins</groupId>"
        f"<artifactId>maven-dependency-plugin</artifactId><version>{_DEPENDENCY_PLUGIN}</version>"
        "</plugin></plugins></pluginManagement></build>\n"
        "</project>\n"
    )


def jar_version(libs: Path, artifact: str) -> str | None:
    """Version of ``<artifact>-<version>.jar`` in ``libs``, if exactly one is there."""
    pattern = re.compile(rf"{re.escape(artifact)}-(\d[\w.-]*)\.jar")
    found = [m[1] for p in libs.glob(f"{artifact}-*.jar") if (m := pattern.fullmatch(p.name))]
    if len(found) > 1:
        raise DownloadError(f"several {artifact} jars in {libs}: {sorted(found)}")
    return found[0] if found else None


def slf4j_binding(slf4j_version: str) -> str:
    """The log4j2 artifact that binds this slf4j API (1.x and 2.x differ).

    >>> slf4j_binding("1.7.36"), slf4j_binding("2.0.17")
    ('log4j-slf4j-impl', 'log4j-slf4j2-impl')
    """
    return "log4j-slf4j-impl" if slf4j_version.startswith("1.") else "log4j-slf4j2-impl"


def logging_backend(libs: Path) -> list[tuple[str, str, str]]:
    """log4j2 core and binding matching the log4j-api and slf4j-api Kafka pulled."""
    slf4j = jar_version(libs, "slf4j-api")
    if slf4j is None:
        raise DownloadError(f"Kafka's dependencies in {libs} carry no slf4j-api jar")
    log4j = jar_version(libs, "log4j-api") or FALLBACK_LOG4J
    group = "org.apache.logging.log4j"
    return [(group, a, log4j) for a in ("log4j-api", "log4j-core", slf4j_binding(slf4j))]


def _mvn(pom_text: str, work: Path, libs: Path, m2: Path) -> None:
    pom = work / "pom.xml"
    pom.write_text(pom_text, encoding="utf-8")
    command = [
        "mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={m2}",
        "dependency:copy-dependencies", f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise DownloadError(f"mvn failed ({done.returncode}) fetching Kafka jars:\n{tail}")


def download(version: str, root: Path | None = None) -> Path:
    """Resolve ``kafka_2.13:<version>`` plus log4j2 into ``<cache>/kafka/<version>/libs``."""
    home = version_dir(version, root)
    libs, m2 = home / "libs", home / "m2"  # m2 only for this download, removed after
    shutil.rmtree(libs, ignore_errors=True)  # a partial earlier download is redone whole
    libs.mkdir(parents=True)
    kafka = [("org.apache.kafka", "kafka_2.13", version)]
    _mvn(render_pom(kafka, isolated=False), home, libs, m2)
    backend = logging_backend(libs)
    _mvn(render_pom(backend, isolated=True), home, libs, m2)
    marker = {"kafka": version, "logging": [f"{a}:{v}" for _, a, v in backend]}
    (home / _MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    shutil.rmtree(m2, ignore_errors=True)  # a second copy of every jar plus Maven's plugins
    return libs


def jars_ready(version: str = KAFKA_VERSION, root: Path | None = None) -> bool:
    """True when a complete download of ``version`` is cached."""
    return (version_dir(version, root) / _MARKER).is_file()


def ensure_jars(version: str = KAFKA_VERSION, root: Path | None = None) -> Path:
    """The cached libs folder, downloading it first if no complete download is there."""
    home = version_dir(version, root)
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / ".lock"):  # two cold sessions must not download into one folder
        if jars_ready(version, root):
            return home / "libs"
        print(f"kafka-local: downloading Kafka {version} jars into {home} (once)", file=sys.stderr)
        began = time.monotonic()
        libs = download(version, root)
        print(f"kafka-local: downloaded in {time.monotonic() - began:.1f}s", file=sys.stderr)
        return libs
