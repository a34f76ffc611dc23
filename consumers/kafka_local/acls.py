"""The least-privilege ACLs of a stream-al floor, and granting them as admin.

One principal per role; each may do what its command does and nothing else (README:
"Securing Kafka"). READ and WRITE each imply DESCRIBE on a topic (metadata, offsets),
and WRITE on any topic lets an idempotent producer get its producer id, so no role
needs a cluster ACL. Only the admin creates topics and grants ACLs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError

from consumers.kafka_local.errors import KafkaLocalError
from stream_al.topics import TopicNames

#: ``stream-al oracle simulate``'s consumer group (``consumers.oracle.simulate``).
ORACLE_GROUP = "stream-al-oracle-simulator"
#: The roles of a floor, one principal each.
FLOOR_PRINCIPALS = ("daemon", "producer", "desk", "oracle")

Operation = Literal["READ", "WRITE"]
Resource = Literal["topic", "group"]


@dataclass(frozen=True, order=True)
class Grant:
    """``principal`` may ``operation`` the topic or group ``name`` (an ALLOW, any host)."""

    principal: str
    resource: Resource
    name: str
    operation: Operation

    def acl(self) -> ACL:
        kind = ResourceType.TOPIC if self.resource == "topic" else ResourceType.GROUP
        pattern = ResourcePattern(kind, self.name, ACLResourcePatternType.LITERAL)
        return ACL(f"User:{self.principal}", "*", ACLOperation[self.operation],
                   ACLPermissionType.ALLOW, pattern)


def _topics(principal: str, grants: Mapping[str, Iterable[Operation]]) -> list[Grant]:
    return [Grant(principal, "topic", name, operation)
            for name, operations in grants.items() for operation in operations]


def floor_grants(topics: TopicNames, daemon_group: str = "stream-al",
                 oracle_group: str = ORACLE_GROUP) -> list[Grant]:
    """What each of ``FLOOR_PRINCIPALS`` needs on ``topics``.

    The daemon reads its inputs in ``daemon_group`` (``kafka.group_id``) and the request
    and label logs without a group; it writes predictions, requests and dead letters.
    The producer writes the inputs; the desk (and ``oracle label``) reads requests,
    labels and claims and writes labels and claims; the oracle simulator reads requests
    in its group and writes labels.
    """
    daemon = _topics("daemon", {
        **{name: ("READ",) for name in topics.inputs},
        topics.requests: ("READ", "WRITE"), topics.labels: ("READ",),
        topics.predictions: ("WRITE",), topics.dlq: ("WRITE",),
    }) + [Grant("daemon", "group", daemon_group, "READ")]  # fmt: skip
    producer = _topics("producer", {name: ("WRITE",) for name in topics.inputs})
    desk = _topics("desk", {topics.requests: ("READ",), topics.labels: ("READ", "WRITE"),
                            topics.claims: ("READ", "WRITE")})  # fmt: skip
    oracle = _topics("oracle", {topics.requests: ("READ",), topics.labels: ("WRITE",)})
    return daemon + producer + desk + oracle + [Grant("oracle", "group", oracle_group, "READ")]


def in_force(admin: KafkaAdminClient) -> set[ACL]:
    """Every ACL the broker enforces now."""
    patterns = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    everything = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, patterns)
    return set(admin.describe_acls(everything)[0])


def grant(admin_options: Mapping[str, Any], grants: Iterable[Grant],
          timeout: float = 30.0) -> None:
    """Create the ACLs as admin and wait until the broker enforces them.

    The controller commits an ACL before the broker's authorizer has it; a client started
    in between would be refused, so this returns once the broker describes every one.
    """
    wanted = {item.acl() for item in grants}
    try:
        admin = KafkaAdminClient(**admin_options)
    except KafkaError as error:
        raise KafkaLocalError(f"granting ACLs: cannot connect as admin ({error})") from error
    try:
        _create_and_wait(admin, wanted, time.monotonic() + timeout)
    except KafkaError as error:
        raise KafkaLocalError(f"granting ACLs failed: {error}") from error
    finally:
        admin.close()


def _create_and_wait(admin: KafkaAdminClient, wanted: set[ACL], deadline: float) -> None:
    result = admin.create_acls(sorted(wanted, key=repr))
    if result["failed"]:
        raise KafkaLocalError(f"creating ACLs failed: {result['failed']}")
    while not wanted <= in_force(admin):
        if time.monotonic() > deadline:
            raise KafkaLocalError("the broker did not enforce the new ACLs in time")
        time.sleep(0.2)
