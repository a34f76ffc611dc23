"""A throwaway CA and the broker's certificate, made with the openssl command line.

The CA signs one certificate (``127.0.0.1`` and ``localhost``) and its key is deleted
right after: nothing can be signed with it later. Clients trust ``ca.pem``; the broker
reads its key and chain from a PKCS12 keystore.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from consumers.kafka_local.errors import KafkaLocalError
from consumers.kafka_local.secure import SecureFiles

#: Long enough that a data dir kept for years never starts failing TLS one morning.
VALID_DAYS = 3650
_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
_KEYSTORE_ENV = "KAFKA_LOCAL_KEYSTORE_PASSWORD"  # an argument would show in `ps`
BROKER_EXTENSIONS = (
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)


def _openssl(openssl: str, arguments: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(  # noqa: S603  # an argument list, never a shell
        [openssl, *arguments], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise KafkaLocalError(f"openssl {arguments[0]} failed:\n{done.stdout}{done.stderr}")


def _make_ca(openssl: str, work: Path, name: str) -> None:
    _openssl(openssl, [
        "req", "-x509", *_CURVE, "-nodes", "-keyout", str(work / "ca.key"),
        "-out", str(work / "ca.pem"), "-days", str(VALID_DAYS),
        "-subj", f"/CN=stream-al kafka-local CA ({name})",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ])  # fmt: skip


def _make_broker_certificate(openssl: str, work: Path) -> None:
    _openssl(openssl, [
        "req", "-new", *_CURVE, "-nodes", "-keyout", str(work / "broker.key"),
        "-out", str(work / "broker.csr"), "-subj", "/CN=127.0.0.1",
    ])  # fmt: skip
    (work / "broker.ext").write_text(BROKER_EXTENSIONS, encoding="utf-8")
    _openssl(openssl, [
        "x509", "-req", "-in", str(work / "broker.csr"), "-CA", str(work / "ca.pem"),
        "-CAkey", str(work / "ca.key"), "-set_serial", str(secrets.randbits(63)),
        "-days", str(VALID_DAYS), "-extfile", str(work / "broker.ext"),
        "-out", str(work / "broker.pem"),
    ])  # fmt: skip


def _make_keystore(openssl: str, work: Path, password: str) -> None:
    _openssl(openssl, [
        "pkcs12", "-export", "-in", str(work / "broker.pem"), "-inkey", str(work / "broker.key"),
        "-certfile", str(work / "ca.pem"), "-name", "broker", "-out", str(work / "broker.p12"),
        "-passout", f"env:{_KEYSTORE_ENV}",
    ], env={**os.environ, _KEYSTORE_ENV: password})  # fmt: skip


def make_certificates(files: SecureFiles, keystore_password: str, openssl: str,
                      name: str) -> None:
    """Write ``files.ca`` and ``files.keystore`` (replacing any); no key stays behind."""
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=files.folder) as temporary:
        work = Path(temporary)
        _make_ca(openssl, work, name)
        _make_broker_certificate(openssl, work)
        _make_keystore(openssl, work, keystore_password)
        os.replace(work / "broker.p12", files.keystore)
        os.replace(work / "ca.pem", files.ca)
