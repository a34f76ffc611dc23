"""The secured local broker: a SASL_SSL listener with SCRAM-SHA-512 principals and ACLs.

Its files live in ``<run dir>/secure/`` (0700), never in the log dir (Kafka would take a
folder there for a partition): ``ca.pem`` (the clients' ``ssl_cafile``), ``broker.p12``
(the broker's keystore) and ``credentials.json`` (0600: each principal's password and the
keystore's). Each password is made here once and saved; the principals known when the
data dir is formatted get their SCRAM credentials then, any asked for later are added as
admin (``add_scram_users``).

Listeners:

* ``SECURE`` (SASL_SSL, SCRAM-SHA-512): every client, and the broker's own inter-broker
  traffic (such as transaction markers, sent to itself) as ``admin``.
* ``CONTROLLER`` (SASL_PLAINTEXT, PLAIN, loopback). Not PLAINTEXT: with an authorizer on,
  the controller checks CLUSTER_ACTION on the broker's registration and heartbeats, and
  over PLAINTEXT the broker is ``User:ANONYMOUS``; making ANONYMOUS a super user would make
  every plaintext connection to the controller port one, free to grant itself any ACL.
  PLAIN checks ``admin`` against a user list in the listener's JAAS config, not SCRAM:
  SCRAM credentials live in the metadata log the controller is still replaying at start.

``admin`` is the only super user; every other principal gets what ACLs grant it
(``allow.everyone.if.no.acl.found=false``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion
from kafka.errors import KafkaError

from consumers.kafka_local.config import Listeners, escape_property
from consumers.kafka_local.errors import KafkaLocalError

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"
CLIENT_LISTENER = "SECURE"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: Letters, digits, '.', '_', '-': nothing that could end a ``[name=…]`` of the format
#: tool, a quoted JAAS value, or an argument in a java @argfile.
_PRINCIPAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


def check_principal(name: str) -> str:
    """``name`` if it may name a principal here, else KafkaLocalError.

    >>> check_principal("daemon")
    'daemon'
    """
    if not _PRINCIPAL.fullmatch(name):
        raise KafkaLocalError(
            f"principal {name!r}: use 1-64 letters, digits, '.', '_' or '-' (a letter or "
            "digit first)"
        )
    return name


def new_password() -> str:
    """32 URL-safe characters: nothing in them needs quoting in JAAS or the format tool."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Credentials:
    """Each principal's SCRAM password (``admin`` always among them) and the keystore's."""

    passwords: Mapping[str, str]
    keystore_password: str

    def __repr__(self) -> str:  # never a password in a traceback or a log
        return f"Credentials(principals={sorted(self.passwords)})"

    @classmethod
    def create(cls, principals: Iterable[str]) -> Credentials:
        return cls({}, new_password()).including(principals)

    def including(self, principals: Iterable[str]) -> Credentials:
        """These credentials plus a fresh password for each principal not yet in them."""
        wanted = [ADMIN, *(check_principal(name) for name in principals)]
        added = {name: new_password() for name in wanted if name not in self.passwords}
        return Credentials({**self.passwords, **added}, self.keystore_password)

    def missing(self, principals: Iterable[str]) -> list[str]:
        return sorted({ADMIN, *principals} - set(self.passwords))

    def password(self, principal: str) -> str:
        try:
            return self.passwords[principal]
        except KeyError:
            raise KafkaLocalError(
                f"no principal {principal!r} on this broker (it has {sorted(self.passwords)})"
            ) from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user alone, also when ``path`` already existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older, wider file keeps its mode otherwise
        handle.write(text)


def save_credentials(path: Path, credentials: Credentials) -> None:
    document = {"passwords": dict(credentials.passwords),
                "keystore_password": credentials.keystore_password}
    write_private(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def load_credentials(path: Path) -> Credentials | None:
    """The saved credentials, or None when there is no readable file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(dict(document["passwords"]), str(document["keystore_password"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class SecureFiles:
    """Where one broker's CA, keystore and credentials are."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    @property
    def credentials(self) -> Path:
        return self.folder / "credentials.json"

    def have_certificates(self) -> bool:
        return self.ca.is_file() and self.keystore.is_file()


def _jaas(module: str, options: Mapping[str, str]) -> str:
    pairs = " ".join(f'{key}="{value}"' for key, value in options.items())
    return f"{module} required {pairs};"


def secure_properties(files: SecureFiles, credentials: Credentials) -> dict[str, str]:
    """The server.properties lines of the SASL_SSL listener, the controller's SASL and the
    authorizer; the listener names and addresses come from ``config.Listeners``."""
    admin = credentials.password(ADMIN)
    controller_jaas = _jaas(_PLAIN_MODULE, {
        "username": ADMIN, "password": admin, f"user_{ADMIN}": admin})
    return {
        "listener.name.secure.sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        # The broker's own login when it is a client of this listener (inter-broker).
        "listener.name.secure.scram-sha-512.sasl.jaas.config": _jaas(
            _SCRAM_MODULE, {"username": ADMIN, "password": admin}),
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": controller_jaas,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": escape_property(str(files.keystore)),
        "ssl.keystore.password": credentials.keystore_password,
        "ssl.key.password": credentials.keystore_password,
        # Inter-broker connections verify the broker's certificate (127.0.0.1 in its SAN).
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": escape_property(str(files.ca)),
        "authorizer.class.name": AUTHORIZER,
        "super.users": f"User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def secure_listeners(files: SecureFiles, credentials: Credentials) -> Listeners:
    return Listeners(client=CLIENT_LISTENER, client_protocol=PROTOCOL,
                     controller_protocol="SASL_PLAINTEXT",
                     extra=secure_properties(files, credentials))


def scram_arguments(credentials: Credentials) -> list[str]:
    """``kafka-storage format`` arguments adding every principal's SCRAM credential.

    The password goes unquoted inside the brackets: nothing ``new_password`` makes needs
    quoting for Kafka's parser.

    >>> scram_arguments(Credentials({"admin": "pw"}, "k"))
    ['--add-scram', 'SCRAM-SHA-512=[name=admin,password=pw]']
    """
    arguments = []
    for name, password in sorted(credentials.passwords.items()):
        arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
    return arguments


def client_security(files: SecureFiles, credentials: Credentials, principal: str
                    ) -> dict[str, Any]:
    """kafka-python keyword arguments (no bootstrap) that log ``principal`` in."""
    return {
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": principal,
        "sasl_plain_password": credentials.password(principal),
        "ssl_cafile": str(files.ca),
    }


def connection_info(bootstrap: str, files: SecureFiles, credentials: Credentials
                    ) -> dict[str, Any]:
    """What a client needs besides its password (that is in ``credentials_file``)."""
    return {
        "bootstrap": bootstrap,
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "ssl_cafile": str(files.ca),
        "credentials_file": str(files.credentials),
        "principals": sorted(credentials.passwords),
    }


def add_scram_users(admin_options: Mapping[str, Any], passwords: Mapping[str, str],
                    timeout: float = 30.0) -> None:
    """Create or reset these principals' SCRAM credentials as admin; return once the
    broker has them (the controller commits them first, and a login in between fails)."""
    upserts = [UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, password)
               for name, password in passwords.items()]
    try:
        admin = KafkaAdminClient(**admin_options)
        try:
            _upsert_and_wait(admin, upserts, sorted(passwords), time.monotonic() + timeout)
        finally:
            admin.close()
    except KafkaError as error:
        raise KafkaLocalError(f"adding principals failed: {error}") from error


def _upsert_and_wait(admin: KafkaAdminClient, upserts: list[UserScramCredentialUpsertion],
                     names: list[str], deadline: float) -> None:
    refused = {name: why for name, why in admin.alter_user_scram_credentials(upserts).items()
               if why}
    if refused:
        raise KafkaLocalError(f"the broker refused SCRAM credentials: {refused}")
    while not all(not found["error"] and found["credential_infos"]
                  for found in admin.describe_user_scram_credentials(names).values()):
        if time.monotonic() > deadline:
            raise KafkaLocalError(f"the broker did not take the principals {names} in time")
        time.sleep(0.2)
