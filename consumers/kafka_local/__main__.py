"""``python -m consumers.kafka_local start|stop|status``: stdout carries only the bootstrap.

Exit codes: 0 success (``status``: the broker answers), 1 not running or failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from consumers.kafka_local.broker import LocalKafka
from consumers.kafka_local.errors import KafkaLocalError
from consumers.kafka_local.jars import KAFKA_VERSION


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-local", description="A local Apache Kafka broker for tests (no Docker)."
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--name", default="default", help="instance name (default: default)")
    parser.add_argument("--port", type=int, help="client port (default: a free one)")
    parser.add_argument("--controller-port", type=int, help="KRaft port (default: a free one)")
    parser.add_argument("--data-dir", type=Path, help="log dir (default: in the cache)")
    parser.add_argument("--kafka-version", default=KAFKA_VERSION, help="Apache Kafka version")
    parser.add_argument("--timeout", type=float, default=90.0, help="start timeout, seconds")
    parser.add_argument("--grace", type=float, default=15.0, help="stop: SIGKILL after, seconds")
    return parser


def _run(args: argparse.Namespace) -> int:
    kafka = LocalKafka(
        args.name,
        port=args.port,
        controller_port=args.controller_port,
        data_dir=args.data_dir,
        kafka_version=args.kafka_version,
        start_timeout=args.timeout,
        stop_grace=args.grace,
    )
    if args.action == "stop":
        stopped = kafka.stop()
        print(f"kafka-local: {args.name!r} {'stopped' if stopped else 'was not running'}",
              file=sys.stderr)  # fmt: skip
        return 0
    bootstrap = kafka.start() if args.action == "start" else kafka.status()
    if bootstrap is None:
        print(f"kafka-local: {args.name!r} is not running", file=sys.stderr)
        return 1
    print(bootstrap)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become a message on stderr and exit code 1."""
    try:
        return _run(_parser().parse_args(argv))
    except KafkaLocalError as error:
        print(f"kafka-local: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
