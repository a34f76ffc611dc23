"""Convert real STDF files the way ``stream-al produce`` does and print what came out.

Per file: parts (PIRs), valid records (through the core's codec), problems, tests per
part, missing fraction, records/s and peak RSS. Each file runs in its own process so
the peak RSS is that file's alone; ``--repeat N`` also converts the largest file's
uncompressed stream concatenated N times, to show memory stays flat as files grow.

    .venv/bin/python scripts/stdf_counts.py /work/shared/datasets/stdf --repeat 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STDF_NAMES = ("*.stdf", "*.std", "*.stdf.gz", "*.std.gz")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def convert(path: Path) -> dict[str, Any]:
    """Runs in the child: convert one file, validate every record, measure."""
    from consumers.produce.items import Parsed
    from consumers.produce.publish import validated
    from consumers.produce.stdf.source import StdfSource

    before = rss_mib()
    source = StdfSource(path, "pass_fail")
    valid, problems, present, tests, passed = 0, 0, 0, set[str](), 0
    start = time.perf_counter()
    for item in source:
        if not isinstance(item, Parsed) or not isinstance(validated(item), bytes):
            problems += 1
            continue
        valid += 1
        values = item.record["measurements"]
        tests.update(values)
        present += sum(v is not None for v in values.values())
        passed += item.record["label"] == "pass"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "parts": source.parts_read,
        "valid": valid,
        "problems": problems,
        "tests": len(tests),
        "tests_per_part": present / valid if valid else 0.0,
        "missing": 1 - present / (valid * len(tests)) if valid and tests else 0.0,
        "pass": passed / valid if valid else 0.0,
        "records_per_s": valid / seconds,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
    }


def in_child(path: Path) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - this very script, with a path we listed
        [sys.executable, __file__, "--one", str(path)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout))


def repeated(path: Path, times: int, folder: Path) -> Path:
    """The file's uncompressed stream N times over: one FAR/MIR per copy, N× the parts."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    target = folder / f"{path.name.split('.')[0]}x{times}.stdf"
    with target.open("wb") as f:
        for _ in range(times):
            f.write(data)
    return target


def show(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'file':<16}{'MB':>7}{'parts':>8}{'valid':>8}{'problems':>9}{'tests':>6}"
        f"{'tests/part':>11}{'missing':>8}{'pass':>7}{'rec/s':>8}{'RSS0':>7}{'peak':>7}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['file']:<16}{r['bytes'] / 1e6:>7.2f}{r['parts']:>8}{r['valid']:>8}"
            f"{r['problems']:>9}{r['tests']:>6}{r['tests_per_part']:>11.1f}"
            f"{r['missing']:>8.1%}{r['pass']:>7.1%}{r['records_per_s']:>8.0f}"
            f"{r['rss_before_mib']:>7.0f}{r['peak_rss_mib']:>7.0f}"
        )
    print("RSS0: MiB after imports; peak: MiB peak RSS of the process (ru_maxrss)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="STDF files or folders")
    parser.add_argument("--repeat", type=int, default=0, help="also the largest file N×")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(convert(args.one)))
        return
    files = sorted(
        f
        for p in args.paths
        for f in ([x for pattern in STDF_NAMES for x in p.glob(pattern)] if p.is_dir() else [p])
    )
    rows = [in_child(f) for f in files]
    if args.repeat and files:
        largest = max(files, key=lambda f: f.stat().st_size)
        with tempfile.TemporaryDirectory() as folder:
            rows.append(in_child(repeated(largest, args.repeat, Path(folder))))
    show(rows)


if __name__ == "__main__":
    main()
