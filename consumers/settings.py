"""The daemon's configuration: one frozen object from a YAML/TOML/JSON file and
``STREAM_AL_…`` environment variables (environment wins), failing at start with the
field, the value and what is allowed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from stream_al.auth import RequestSigner
from stream_al.errors import ConfigError
from stream_al.learner import LearnerConfig
from stream_al.topics import TopicNames

CONFIG_ENV = "STREAM_AL_CONFIG"
_FROZEN = ConfigDict(frozen=True, extra="forbid")


#: The Kafka clients the gateway (``consumers.kafka``) can speak through.
KafkaClient = Literal["kafka-python", "confluent"]
#: What ``kafka.client`` is when nothing names one (README: why this one).
DEFAULT_CLIENT: KafkaClient = "confluent"


class KafkaSettings(BaseModel):
    """Client settings; security options pass straight through to kafka-python, and are
    mapped to librdkafka's for ``client: confluent`` (``consumers.kafka.confluent``)."""

    model_config = _FROZEN

    client: KafkaClient = Field(
        DEFAULT_CLIENT, description="the Kafka client: confluent (confluent-kafka on "
        "librdkafka, the default: the daemon runs ~1.5x faster on it) or kafka-python "
        "(pure Python)", validate_default=True)
    bootstrap_servers: Annotated[list[str], NoDecode] = Field(
        ["localhost:9092"], min_length=1, description="host:port list, comma-separated in env")
    group_id: str = Field("stream-al", min_length=1, description="consumer group of the inputs")
    client_id: str = "stream-al"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    ssl_certfile: Path | None = Field(None, description="client certificate (mTLS)")
    ssl_keyfile: Path | None = Field(None, description="client key (mTLS)")
    ssl_password: SecretStr | None = None
    request_timeout_ms: int = Field(30_000, ge=1000)
    fetch_max_wait_ms: int = Field(
        500, ge=1, le=30_000, description="longest a consumer's fetch waits at the broker "
        "for records: lower cuts the produce-to-prediction tail at low rates, at the cost "
        "of more (empty) fetch requests while the floor is quiet")

    @field_validator("client")
    @classmethod
    def _installed(cls, value: str) -> str:
        if value == "confluent" and importlib.util.find_spec("confluent_kafka") is None:
            raise ValueError("confluent-kafka is not installed (stream-al depends on it: "
                             "pip install 'confluent-kafka>=2.6,<3'), or set kafka.client: "
                             "kafka-python")
        return value

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def client_options(self) -> dict[str, Any]:
        """kafka-python keyword arguments, secrets revealed (never log these)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        optional = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_plain_username,
            "sasl_plain_password": _reveal(self.sasl_plain_password),
            "ssl_cafile": _text(self.ssl_cafile), "ssl_certfile": _text(self.ssl_certfile),
            "ssl_keyfile": _text(self.ssl_keyfile), "ssl_password": _reveal(self.ssl_password),
        }
        options.update({k: v for k, v in optional.items() if v is not None})
        return options


class HttpSettings(BaseModel):
    model_config = _FROZEN

    host: str = Field("127.0.0.1", description="address for /metrics, /healthz, /readyz "
                      "(0.0.0.0 to let Prometheus on another host scrape it)")
    port: int = Field(9108, ge=0, le=65535, description="0 picks a free port")


class CheckpointSettings(BaseModel):
    model_config = _FROZEN

    interval_s: float = Field(10.0, gt=0, description="seconds between checkpoints")
    every_labels: int = Field(200, ge=1, description="also checkpoint after this many labels")
    # No length constraint here: a rejected value is echoed in the settings error, and this
    # one is a secret; the checkpoint store checks its length when it starts.
    key: SecretStr | None = Field(None, description="HMAC key authenticating checkpoints, "
                                  "32+ characters (default: generated once into "
                                  "state_dir/checkpoint.key); replicas sharing it can read "
                                  "each other's checkpoints, and whoever can read it can "
                                  "forge one")


class DeskSettings(BaseModel):
    """The labelling desk (``stream-al desk``) and the terminal labeller.

    Who signs labels at the desk, one of three: ``labeler`` (one trusted operator, no
    login), ``trusted_user_header`` (a reverse proxy has authenticated the person), or
    neither (accounts in ``users_file``, each person logs in with a password).
    """

    model_config = _FROZEN

    host: str = Field("127.0.0.1", description="address the desk listens on (0.0.0.0: the LAN)")
    port: int = Field(8765, ge=0, le=65535, description="desk port; 0 picks a free port")
    labeler: str | None = Field(None, min_length=1, max_length=256,
                                description="name on every label, no login: for a single "
                                "trusted operator; unset: each person logs in")
    claim_minutes: float = Field(5.0, ge=0.05, description="minutes a card stays reserved "
                                 "for whoever opened it")
    local_claims: bool = Field(False, description="keep claims in this process only (then run "
                               "no other desk or terminal on these topics)")
    users_file: Path | None = Field(None, description="desk accounts, written 0600 by "
                                    "`stream-al desk users` (default: state_dir/desk-users.json)")
    # Its length is checked when the desk starts (sessions.py), by a message that says
    # what to do rather than pydantic's "at least 32 items".
    session_secret: SecretStr | None = Field(None, description="key signing session cookies, "
                                             "32+ characters (default: generated once into "
                                             "state_dir/desk-session-secret)")
    session_hours: float = Field(12.0, gt=0, le=24 * 30,
                                 description="hours a login lasts (one shift by default)")
    trusted_user_header: str | None = Field(
        None, min_length=1, pattern=r"^[A-Za-z0-9-]+$", description="take the person's name "
        "from this request header set by a reverse proxy, e.g. X-Forwarded-User; only when "
        "the desk is reachable through that proxy alone")
    public_origin: str | None = Field(
        None, pattern=r"^https?://[^/\s]+$", description="scheme://host[:port] browsers use "
        "to reach the desk behind a proxy; unset: the address each request was sent to")
    tls_certfile: Path | None = Field(None, description="certificate (PEM) to serve HTTPS; "
                                      "with tls_keyfile")
    tls_keyfile: Path | None = Field(None, description="private key (PEM) of tls_certfile")

    @model_validator(mode="after")
    def _one_way_to_name_people(self) -> DeskSettings:
        if self.labeler is not None and self.trusted_user_header is not None:
            raise ValueError("set desk.labeler or desk.trusted_user_header, not both")
        return self

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> DeskSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both desk.tls_certfile and desk.tls_keyfile, or neither")
        return self


#: Kafka's retention.ms for "never delete".
FOREVER = -1.0


def _hours(description: str, default: float) -> Any:
    return Field(default, description=f"{description}; -1: forever")


class RetentionSettings(BaseModel):
    """How long Kafka keeps each topic family (``retention.ms``), set by ``stream-al topics
    create``. Requests and labels must outlive what a replica's restore reads: its
    checkpoint's offsets onward, so the longest outage to survive plus the checkpoint
    interval (guarantees.md, "Retention")."""

    model_config = _FROZEN

    inputs_hours: float = _hours("hours the input topics keep records", 168.0)
    predictions_hours: float = _hours("hours the prediction topic keeps predictions", 168.0)
    requests_hours: float = _hours(
        "hours the request topic keeps oracle requests: at least labels_hours plus the "
        "query lifetime (learner.query_ttl_s), so every label kept still finds its request",
        192.0)
    labels_hours: float = _hours(
        "hours the label topic keeps labels: at least the longest outage a replica must "
        "survive plus the checkpoint interval, and the query lifetime (learner.query_ttl_s)",
        168.0)
    dlq_hours: float = _hours("hours the dead-letter topic keeps dead letters", 720.0)

    @field_validator("*")
    @classmethod
    def _positive_or_forever(cls, value: float) -> float:
        if value != FOREVER and value <= 0:
            raise ValueError("use a number of hours above 0, or -1 to keep forever")
        return value

    def ms(self, hours: float) -> str:
        """``retention.ms`` for ``hours``."""
        return "-1" if hours == FOREVER else str(round(hours * 3_600_000))


def _outlives(hours: float, seconds: float) -> bool:
    return hours == FOREVER or hours * 3600 >= seconds


class SecuritySettings(BaseModel):
    """Who may teach the model: the key that signs the daemon's oracle requests."""

    model_config = _FROZEN

    request_key: SecretStr | None = Field(
        None, description="HMAC key (at least 16 characters) signing every oracle request; "
        "set the same key on every replica, and requests without a valid signature are "
        "dead-lettered. Unset: any request on the topic is trusted")

    @field_validator("request_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    def signer(self) -> RequestSigner | None:
        key = self.request_key
        return RequestSigner(key.get_secret_value().encode()) if key else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAM_AL_", env_nested_delimiter="__",
                                      frozen=True, extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings()
    topics: TopicNames = TopicNames()
    learner: LearnerConfig = LearnerConfig()
    checkpoint: CheckpointSettings = CheckpointSettings()
    desk: DeskSettings = DeskSettings()
    security: SecuritySettings = SecuritySettings()
    retention: RetentionSettings = RetentionSettings()
    state_dir: Path = Field(Path("state"), description="where checkpoints live (0700)")
    poll_max_records: int = Field(500, ge=1, le=100_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("retention")
    @classmethod
    def _retention_outlives_open_queries(cls, value: RetentionSettings, info: ValidationInfo
                                         ) -> RetentionSettings:
        learner = info.data.get("learner")
        if learner is None:
            return value  # learner itself is invalid: that error is reported instead
        ttl_s = learner.query_ttl_s
        for topic in ("requests", "labels"):
            hours = getattr(value, f"{topic}_hours")
            if not _outlives(hours, ttl_s):
                raise ValueError(
                    f"retention.{topic}_hours = {hours:g} is shorter than the query lifetime "
                    f"learner.query_ttl_s = {ttl_s:g} s ({ttl_s / 3600:g} h): open queries "
                    f"would be deleted before they are answered; raise it to at least "
                    f"{ttl_s / 3600:g}")
        if value.labels_hours == FOREVER and value.requests_hours != FOREVER:
            raise ValueError(
                f"retention.requests_hours = {value.requests_hours:g} with labels kept forever "
                "(retention.labels_hours = -1): set retention.requests_hours = -1 too, so "
                "every label kept still finds its request")
        if not _outlives(value.requests_hours, value.labels_hours * 3600 + ttl_s):
            raise ValueError(
                f"retention.requests_hours = {value.requests_hours:g} must be at least "
                f"retention.labels_hours + learner.query_ttl_s "
                f"({value.labels_hours:g} + {ttl_s / 3600:g} h): every label kept must still "
                "find its request")
        return value


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (or ``$STREAM_AL_CONFIG``) and the environment."""
    path = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist (set by --config or {CONFIG_ENV})")
    settings_class = Settings if path is None else _with_file(path)
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_errors(error, path)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(error)}"
                          ) from None
    except ValueError as error:  # not TOML or JSON (their parse errors are ValueErrors)
        raise ConfigError(f"config file {path} could not be read: {error}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what, in one line (PyYAML's own message spans several)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def _with_file(path: Path) -> type[Settings]:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError(f"config file {path}: use a .yaml, .yml, .toml or .json file")

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            source: PydanticBaseSettingsSource
            if suffix == ".toml":
                source = TomlConfigSettingsSource(settings_cls, toml_file=path)
            elif suffix == ".json":
                source = JsonConfigSettingsSource(settings_cls, json_file=path)
            else:
                source = YamlConfigSettingsSource(settings_cls, yaml_file=path)
            return init_settings, env_settings, source

    return FileSettings


def describe_errors(error: ValidationError, path: Path | None) -> str:
    """One line per problem: dotted field, the value given, what is wrong, the field's
    own description as the hint, and where settings come from."""
    where = f"{path} and " if path else ""
    lines = [f"invalid configuration ({where}STREAM_AL_* environment variables):"]
    for problem in error.errors():
        if problem["type"] == "default_factory_not_called":
            continue  # a follow-on of another field's error, not a problem of its own
        field = ".".join(str(part) for part in problem["loc"])
        env = "STREAM_AL_" + "__".join(str(p) for p in problem["loc"]).upper()
        hint = _description(Settings, problem["loc"])
        given = "" if problem["type"] == "missing" else f" = {problem.get('input')!r}"
        if _is_secret(problem["loc"]):
            given = " = '**********'"  # an error message must never print a secret
        line = f"  {field}{given}: {problem['msg']}"
        if problem["type"] == "extra_forbidden":
            line = f"  {field}: unknown setting; check its spelling against `stream-al config show`"
        lines.append(line + (f" (expected: {hint})" if hint else "") + f" [env {env}]")
    return "\n".join(lines)


def _description(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    info: FieldInfo | None = None
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return info.description if info else None
        info = fields[part]
        current = info.annotation
    return info.description if info else None


def _is_secret(loc: tuple[int | str, ...]) -> bool:
    current: Any = Settings
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return False
        current = fields[part].annotation
    return "SecretStr" in str(current)


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown as ******."""
    return settings.model_dump(mode="json")  # SecretStr dumps as "**********"


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret else None


def _text(path: Path | None) -> str | None:
    return str(path) if path else None
