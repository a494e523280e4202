"""The broker's configuration: a frozen pydantic model read from YAML and passed in.

No module-level settings: two brokers with different configurations can run in one
process (the tests do).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationInfo, model_validator

from broker.env_config import environment_overrides, merge
from broker.yaml_models import read_mapping, validate


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = "sqlite:///var/broker.db"
    #: NORMAL survives a process crash; FULL also survives power loss.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class TlsConfig(_Section):
    """TLS on one listener or destination (PS3.15 B.12, BCP 195: TLS 1.2+, AEAD ciphers)."""

    #: PEM certificate chain and private key: required on a listener, the client
    #: certificate on a destination (optional there).
    cert: Path | None = None
    key: Path | None = None
    #: PEM trust anchors. Listener: verifies client certificates (without it none are
    #: asked for). Destination: verifies the server (without it: the system's store).
    ca: Path | None = None
    #: Listener: refuse clients without a certificate signed by `ca`.
    require_client_cert: bool = False
    #: Destination: the name the server's certificate must carry (default: its host).
    server_name: str | None = None
    #: Listener: a peer that has not completed its handshake by then is closed.
    handshake_timeout_seconds: float = Field(5, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        if self.require_client_cert and self.ca is None:
            raise ValueError("tls.require_client_cert needs tls.ca to verify them against")
        return self


class Hl7SenderConfig(_Section):
    application: str = Field(min_length=1)
    #: None: from any facility.
    facility: str | None = None


class Hl7ListenerConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(2575, ge=0, le=65535)
    max_frame_bytes: int = Field(1 << 20, ge=1024)
    idle_timeout_seconds: float = Field(600, gt=0)
    #: Connections served at once (a thread each); one more is closed at once.
    max_connections: int = Field(64, ge=1)
    #: Processes serving the connections: 1, the broker's own; more, that many intake
    #: processes besides it (hl7/processes.py), for a feed one core cannot keep up with.
    processes: int = Field(1, ge=1, le=32)
    #: After each ACK, a connection that is the only one sending watches for the next
    #: message this long (milliseconds) before sleeping: a sleeping thread wakes slow
    #: (hl7/listener.py). 0: always sleep. At most this much CPU per message.
    busy_poll_ms: float = Field(1.0, ge=0, le=10)
    tls: TlsConfig | None = None
    #: Sending application/facility (MSH-3/MSH-4) allowed to send; empty: anyone.
    #: Others are answered AR and their message is kept as refused, not applied.
    allowed_senders: list[Hl7SenderConfig] = []


Service = Literal["verification", "worklist", "mpps"]
SERVICES: tuple[Service, ...] = ("verification", "worklist", "mpps")


class CallerConfig(_Section):
    #: Show this caller only the steps scheduled on its own station.
    station_only: bool = False
    #: Its station's AE title in the worklist, when it calls with another one.
    station_ae: str = Field("", max_length=16)
    #: Addresses (IP or CIDR) it may call from; empty: any.
    addresses: list[IPvAnyNetwork] = []
    #: DICOM services it may use; others' presentation contexts are rejected.
    services: list[Service] = list(SERVICES)


class DicomConfig(_Section):
    ae_title: str = Field("BROKER", min_length=1, max_length=16)
    host: str = "0.0.0.0"
    port: int = Field(11112, ge=0, le=65535)
    max_associations: int = Field(50, ge=1)
    acse_timeout_seconds: float = Field(30, gt=0)
    dimse_timeout_seconds: float = Field(60, gt=0)
    network_timeout_seconds: float = Field(60, gt=0)
    max_worklist_matches: int = Field(1000, ge=1)
    #: Worklist queries (C-FIND and DICOMweb search) computed at once; the others wait
    #: their turn in the order they came (broker/gate.py). One suits CPython: its
    #: threads share one interpreter lock, and queries taking turns on it all finished
    #: late. On PostgreSQL, where a query also waits for the server, 2 measured 4 %
    #: more queries/s (50 clients).
    concurrent_queries: int = Field(1, ge=1)
    #: Calling AE titles the broker knows, with what each may see.
    callers: dict[str, CallerConfig] = {}
    #: Accept associations from AE titles not listed in `callers` (rejected with
    #: A-ASSOCIATE-RJ 1/1/3 "calling AE title not recognized" when false).
    accept_unknown_callers: bool = True
    tls: TlsConfig | None = None
    #: A DIMSE message (command or data set, all P-DATA fragments) larger than this is
    #: aborted: worklist queries and MPPS are a few KiB (RELIABILITY.md D3).
    max_message_bytes: int = Field(1 << 20, ge=64 * 1024)


class DestinationConfig(_Section):
    host: str
    port: int = Field(ge=1, le=65535)
    timeout_seconds: float = Field(10, gt=0)
    tls: TlsConfig | None = None


class Hl7DestinationConfig(DestinationConfig):
    """An HL7 peer: its MSH-5/MSH-6 in what the broker sends it (strict receivers
    refuse messages without them). Empty: the order's placer application (ORC-2.2) and
    facility (MSH-4) as received."""

    receiving_application: str = Field("", max_length=227)
    receiving_facility: str = Field("", max_length=227)


class ImageManagerConfig(Hl7DestinationConfig):
    #: The name under which its messages wait in the outbox (keep it stable).
    name: str = Field(min_length=1, max_length=64)


class MppsForwardConfig(DestinationConfig):
    """An SCP that receives every MPPS N-CREATE / N-SET (e.g. an Image Manager)."""

    name: str = Field(min_length=1, max_length=64)
    ae_title: str = Field(min_length=1, max_length=16)


class OutboxConfig(_Section):
    poll_seconds: float = Field(0.2, gt=0)
    retry_initial_seconds: float = Field(1, gt=0)
    retry_max_seconds: float = Field(300, gt=0)


class HousekeepingConfig(_Section):
    interval_minutes: float = Field(10, gt=0)
    #: An MPPS still IN PROGRESS after this long is flagged (logged, `broker mpps stale`).
    stale_after_hours: float = Field(12, gt=0)
    #: Finished orders, sent messages and accepted inbound messages older than this
    #: leave the working tables (orders into archived_orders).
    retention_days: float = Field(90, gt=0)
    #: Refused inbound messages (AE/AR, kept raw for `messages replay`) older than this
    #: are deleted: long enough to fix a cause and replay, bounded against a junk sender.
    refused_retention_days: float = Field(30, gt=0)
    #: Rows deleted per transaction when pruning (short writer-lock holds).
    prune_batch: int = Field(1000, gt=0, le=100_000)


class WebToken(_Section):
    """One API client: `read` may only GET; `admin` may also requeue, replay, reconcile.

    The secret comes from exactly one of `token` (in the file), `token_file` (a file
    only the broker's user reads, e.g. a container secret) or `token_env` (the name of
    an environment variable), so the configuration file itself can be shared."""

    name: str = Field(min_length=1, max_length=64)
    role: Literal["read", "admin"] = "read"
    token: SecretStr = Field(min_length=16)
    #: A modality's token: its DICOMweb worklist and MPPS requests act as this calling AE
    #: title, under its `dicom.callers` rules (station_only, addresses, services).
    calling_ae: str = Field("", max_length=16)
    token_file: Path | None = None
    token_env: str | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _secret_from_file_or_environment(cls, data: object, info: ValidationInfo) -> object:
        """Read the secret where `token_file`/`token_env` say; the value never enters a message."""
        if not isinstance(data, Mapping):
            return data
        given = [key for key in ("token", "token_file", "token_env") if data.get(key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of token, token_file, token_env")
        if given[0] == "token_file":
            return {**data, "token": _read_secret(Path(str(data["token_file"])))}
        if given[0] == "token_env":
            environ: Mapping[str, str] = (info.context or {}).get("environ", os.environ)
            if not environ.get(str(data["token_env"])):
                raise ValueError(f"the environment variable {data['token_env']} is not set")
            return {**data, "token": environ[str(data["token_env"])].strip()}
        return data


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"token_file {path} cannot be read ({type(exc).__name__})") from None


class WebConfig(_Section):
    """REST API, the page for the day and /metrics (off unless enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    #: Bearer tokens. With none, only a loopback address may be bound and the API is
    #: read-only: every change answers 403 until an admin token is configured.
    tokens: list[WebToken] = []
    #: Host header values served besides the bind address and localhost, 127.0.0.1 and
    #: [::1] on the web port: `name` (any port) or `name:port`. Others get 421, which
    #: defeats DNS rebinding (a hostile page whose name resolves to this machine).
    allowed_hosts: list[str] = []
    #: HTTPS on the web listener, with the same BCP 195 settings as the other listeners.
    tls: TlsConfig | None = None
    #: The page's language: `en`, `ja`, or `auto` (the browser's Accept-Language).
    language: Literal["auto", "en", "ja"] = "auto"

    @model_validator(mode="after")
    def _tokens_off_loopback(self) -> WebConfig:
        """RELIABILITY S5: no unauthenticated API reachable from the network."""
        if self.enabled and not self.tokens and not is_loopback(self.host):
            raise ValueError(f"web.host {self.host} is reachable from the network: set web.tokens or bind 127.0.0.1")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class AuditConfig(_Section):
    """IHE ATNA audit trail: DICOM audit messages (PS3.15 A.5) as RFC 5424 syslog."""

    enabled: bool = False
    #: The Audit Record Repository (syslog collector); none: the trail is kept locally only.
    host: str | None = None
    #: 6514 is the RFC 5425 port; RFC 5426 UDP collectors listen on 514.
    port: int = Field(6514, ge=1, le=65535)
    #: tls (RFC 5425, reliable: spooled while the collector is down) or udp (RFC 5426, best effort).
    protocol: Literal["tls", "udp"] = "tls"
    #: With protocol tls: `ca` for the collector's certificate (default: system roots),
    #: `cert`/`key` for collectors that authenticate nodes (ATNA), `server_name`.
    tls: TlsConfig = TlsConfig()
    timeout_seconds: float = Field(10, gt=0)
    #: RFC 5424 APP-NAME and the broker's UserName in the messages.
    app_name: str = Field("swf-broker", min_length=1, max_length=48)
    #: AuditSourceID (default: the host name) and AuditEnterpriseSiteID.
    audit_source_id: str = ""
    enterprise_site_id: str = ""


class BrokerConfig(_Section):
    profile: str = "ihe-swf"
    #: Root for the UIDs the broker makes (Study Instance UID); none: UUID-derived 2.25.
    uid_root: str | None = Field(None, pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$", max_length=40)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: json: one JSON object per line (for log shippers); text: for people.
    log_format: Literal["text", "json"] = "text"
    database: DatabaseConfig = DatabaseConfig()
    hl7: Hl7ListenerConfig = Hl7ListenerConfig()
    dicom: DicomConfig = DicomConfig()
    ris: Hl7DestinationConfig | None = None
    #: Image Managers that receive RAD-4/RAD-13 procedure messages.
    image_managers: list[ImageManagerConfig] = []
    #: SCPs the PPS Manager forwards MPPS to, through the outbox.
    mpps_forward: list[MppsForwardConfig] = []
    outbox: OutboxConfig = OutboxConfig()
    housekeeping: HousekeepingConfig = HousekeepingConfig()
    web: WebConfig = WebConfig()
    audit: AuditConfig = AuditConfig()


class ConfigError(Exception):
    """A configuration that cannot be used; names the key, the value and the reason."""


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> BrokerConfig:
    """The YAML file (none: the defaults), then the `BROKER__...` variables of `environ`
    over it (see `broker.env_config`): containers and service units set a port or the
    database URL without a file of their own."""
    data = anchored(read_mapping(path, ConfigError), path.resolve().parent) if path else {}
    overrides, sources = environment_overrides(BrokerConfig, environ or {}, ConfigError)
    merged = merge(data, overrides)
    context = {"environ": environ or {}}
    return validate(BrokerConfig, merged, path or Path("(defaults)"), ConfigError, sources, context)


#: Keys of a `tls:` block that name files.
_TLS_FILES = ("cert", "key", "ca")
_SQLITE = "sqlite:///"


def anchored(data: dict[str, object], base: Path) -> dict[str, object]:
    """The file's relative paths made relative to the file itself, not to the working
    directory: `broker serve --config /etc/broker/site.yaml` finds `var/broker.db`,
    `tls/broker.crt`, `profiles/site.yaml` and a `token_file` beside the configuration wherever it is
    started from. Values from the environment are left as given."""
    return {key: _anchor(key, value, base) for key, value in data.items()}


def _anchor(key: str, value: object, base: Path) -> object:
    if isinstance(value, list):
        return [_anchor(key, item, base) for item in value]
    if not isinstance(value, dict):
        return _path_value(key, value, base)
    if key == "tls":
        return {k: _joined(v, base) if k in _TLS_FILES else v for k, v in value.items()}
    return {k: _anchor(k, v, base) for k, v in value.items()}


def _path_value(key: str, value: object, base: Path) -> object:
    if key == "url" and isinstance(value, str) and value.startswith(_SQLITE) and value != _SQLITE + ":memory:":
        return _SQLITE + str(_joined(value.removeprefix(_SQLITE), base))
    if key == "profile" and isinstance(value, str) and value.endswith((".yaml", ".yml")):
        return str(_joined(value, base))
    if key == "token_file":
        return _joined(value, base)
    return value


def _joined(value: object, base: Path) -> object:
    return str(base / value) if isinstance(value, str) and value and not Path(value).is_absolute() else value
