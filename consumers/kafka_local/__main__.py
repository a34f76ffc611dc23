"""``python -m consumers.kafka_local start|stop|status``: stdout carries only the bootstrap.

A secured broker (``start --secure``) adds a second line: one JSON object with the
bootstrap, ``security_protocol``, ``sasl_mechanism``, ``ssl_cafile``, ``credentials_file``
(each principal's password, mode 0600) and ``principals``.

Exit codes: 0 success (``status``: the broker answers), 1 not running or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consumers.kafka_local.acls import FLOOR_PRINCIPALS, floor_grants, grant
from consumers.kafka_local.broker import LocalKafka
from consumers.kafka_local.errors import KafkaLocalError
from consumers.kafka_local.jars import KAFKA_VERSION
from stream_al.topics import TopicNames


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
    parser.add_argument("--secure", action="store_true",
                        help="start: SASL_SSL (SCRAM-SHA-512) with ACLs, admin the super user")
    parser.add_argument("--principal", action="append", default=[], metavar="NAME",
                        help="start --secure: a SCRAM principal besides admin (repeatable)")
    parser.add_argument("--floor-acls", action="store_true",
                        help="start --secure: principals daemon, producer, desk and oracle, "
                        "each granted the README's ACLs on the default topic names")
    return parser


def _kafka(args: argparse.Namespace) -> LocalKafka:
    return LocalKafka(
        args.name,
        port=args.port,
        controller_port=args.controller_port,
        data_dir=args.data_dir,
        kafka_version=args.kafka_version,
        start_timeout=args.timeout,
        stop_grace=args.grace,
        secure=args.secure,
        principals=[*args.principal, *(FLOOR_PRINCIPALS if args.floor_acls else ())],
    )


def _start(kafka: LocalKafka, floor_acls: bool) -> str:
    bootstrap = kafka.start()
    if floor_acls:  # Kafka keeps an ACL created twice once: a restart may grant again
        grant(kafka.client_options(), floor_grants(TopicNames()))
    return bootstrap


def _print_address(kafka: LocalKafka, bootstrap: str) -> None:
    print(bootstrap)
    info = kafka.connection_info()
    if info is not None:  # a secured broker: how to log in, on a line of its own
        print(json.dumps(info, sort_keys=True))


def _run(args: argparse.Namespace) -> int:
    kafka = _kafka(args)
    if args.action == "stop":
        stopped = kafka.stop()
        print(f"kafka-local: {args.name!r} {'stopped' if stopped else 'was not running'}",
              file=sys.stderr)  # fmt: skip
        return 0
    bootstrap = _start(kafka, args.floor_acls) if args.action == "start" else kafka.status()
    if bootstrap is None:
        print(f"kafka-local: {args.name!r} is not running", file=sys.stderr)
        return 1
    _print_address(kafka, bootstrap)
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
