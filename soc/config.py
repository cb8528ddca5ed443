"""Settings: one YAML file plus ``SOC_...`` environment variables, safe embedded defaults.

Precedence (highest first): environment variables (``SOC_DATA_DIR``, ``SOC_STORE_URL``,
``SOC_DETECTION__INTERVAL_SECONDS`` ...), the YAML file named by ``SOC_CONFIG`` (or ``soc.yml``
in the working directory), then the defaults below, which run the embedded service on one
machine with nothing to install.

Content folders (``ingest/``, ``detections/``, ``playbooks/``) are found next to the working
directory first, then next to the installed package (a source checkout).

Settings are strict (:func:`load_settings`): a key in the file that is no setting, at any depth,
a ``SOC_...`` variable that sets no setting (unless reserved: :data:`RESERVED_ENV_NAMES`,
:data:`RESERVED_ENV_PREFIXES`), ``SOC_CONFIG`` naming a missing file, invalid YAML and wrong
values are :class:`ConfigError`, each problem in one line naming the file and line or the
variable (:mod:`soc.config_errors`). ``soc config check`` lists them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from soc.config_api import ApiSettings
from soc.config_auth import AuthSettings
from soc.config_errors import (
    ConfigError,
    EnvironmentSettings,
    Problem,
    SettingsFile,
    environment_settings,
    explain_settings_error,
    explain_validation_error,
    read_settings_file,
    secret_env_names,
    unknown_keys,
)
from soc.config_intel import IntelSettings
from soc.config_security import KafkaSecuritySettings, SyslogTlsSettings
from soc.config_taxii import TaxiiSettings
from soc.secrets import (
    is_secret_name,
    mask_url,
    resolve_secret,
    url_password,
    url_username,
    url_with_password,
    warn_inline,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

#: ``SOC_...`` environment variables that are no setting but are read directly by the code, the
#: tests, the tools or the deployment; they are never reported as unknown. Any other ``SOC_...``
#: variable must set a setting (``SOC_DETECTION__INTERVAL_SECONDS``), or be named by a ``..._env``
#: setting (``smtp: {password_env: SOC_SMTP_PASSWORD}``), or it is an error.
RESERVED_ENV_NAMES: dict[str, str] = {
    "SOC_CONFIG": "the settings file (default: soc.yml in the working directory)",
    "SOC_DEBUG": "show the traceback of a configuration error (`soc --debug`)",
    "SOC_SHARED_DATA": "tests: the folder of real test data (tests/conftest.py, default: ../shared/data)",
    "SOC_TOPIC_PARTITIONS": "docker/compose.yml: partitions of the soc.logs topic (docker/env.example)",
}
#: name prefixes of reserved ``SOC_...`` variables (see :data:`RESERVED_ENV_NAMES`)
RESERVED_ENV_PREFIXES: dict[str, str] = {
    "SOC_TEST_": "tests: servers to reuse and images (tests/servers.py: SOC_TEST_KAFKA_BOOTSTRAP, "
                 "SOC_TEST_OPENSEARCH_URL, SOC_TEST_DEVSTACK_STATE, SOC_TEST_ELASTICSEARCH_IMAGES)",
    "SOC_DEVSTACK_": "the dev servers of soc/devstack: SOC_DEVSTACK_JAVA, SOC_DEVSTACK_JAVA_OPTS, "
                     "SOC_DEVSTACK_CDS, SOC_DEVSTACK_TIMEOUT",
}


def content_dir(name: str) -> Path:
    """``name`` (ingest, detections, playbooks) in the working directory, else in the checkout."""
    here = Path.cwd() / name
    return here if here.is_dir() else PROJECT_ROOT / name


class SyslogSettings(BaseModel):
    udp: str | None = Field("0.0.0.0:5514", description="UDP listen address, or empty to disable")
    tcp: str | None = Field("0.0.0.0:5514", description="TCP listen address, or empty to disable")
    max_message_bytes: int = Field(65536, description="longer messages are dead-lettered")
    tls: SyslogTlsSettings = Field(default_factory=SyslogTlsSettings,
                                   description="syslog over TLS on its own port (RFC 5425), mutual TLS")


class DetectionSettings(BaseModel):
    interval_seconds: int = Field(60, ge=1, description="default run interval of a rule")
    overlap_seconds: int = Field(120, ge=0, description="each run re-reads this much before its watermark")
    settle_seconds: int = Field(5, ge=0, description="each run stops this far before now")
    max_concurrent_rules: int = Field(2, ge=1, description="rules evaluated at the same time")
    query_timeout_seconds: int = Field(60, ge=1)
    max_alerts_per_run: int = Field(1000, ge=1, description="a run that hits this says so")
    rule_cache: bool = Field(True, description="keep compiled rules (per rule file, by content) so that the next "
                             "start or hunt skips YAML parsing and conversion (soc/detect/rulecache.py)")
    rule_cache_dir: Path | None = Field(None, description="folder of the compiled-rule cache, private to the "
                                        "service's user (default: <data_dir>/rule-cache)")


class SearchSourceSettings(BaseModel):
    """Logs another shipper already put in the search cluster, queried in place (issue #14):
    detection and event search read ``index`` with that shipper's field layout
    (:mod:`soc.store.search_sources`)."""

    name: str = Field(description="short id, part of the event ids of its matches, e.g. 'winlogbeat'")
    index: str = Field(description="index pattern(s), comma-separated, e.g. 'winlogbeat-*' or 'logs-windows.*-*'")
    shipper: Literal["winlogbeat", "elastic-agent"] = Field(
        "winlogbeat", description="whose field layout the documents have (winlog.*, event.code, ECS process.*...)")
    datasets: list[str] = Field(default_factory=lambda: ["windows.security", "windows.sysmon", "windows.system",
                                                          "windows.powershell"],
                                description="the datasets (ingest/datasets.yml) whose rules run on it")
    agency: str | None = Field(None, description="agency id its events belong to")
    time_field: Literal["@timestamp", "event.ingested"] = Field(
        "@timestamp", description="the time the scheduler's ingest-time windows read (event.ingested if the "
                                  "shipper's pipeline sets it, as Elastic Agent's do)")


class KafkaSettings(KafkaSecuritySettings):
    """The Kafka ingest path (``soc kafka ...``, see docs/kafka.md); TLS and SASL keys:
    :class:`soc.config_security.KafkaSecuritySettings`."""

    bootstrap: str = "127.0.0.1:9092"
    topic: str = "soc.logs"
    dead_letter_topic: str = "soc.logs.dlq"
    group: str = "soc-ingest"
    batch_size: int = Field(5000, ge=1, description="records per bulk write (and commit)")
    max_message_bytes: int = Field(65536, ge=1, description="longer records are dead-lettered")
    invalid_utf8: str = Field("dead-letter", pattern="^(dead-letter|store)$",
                              description="records that are not UTF-8: dead-letter, or store with soc.raw_b64")
    max_poll_interval_ms: int = Field(300_000, ge=10_000,
                                      description="the group drops a member that does not poll this long")
    session_timeout_ms: int = Field(45_000, ge=6_000,
                                    description="a worker that stops heartbeating this long is replaced")
    retry_max_seconds: float = Field(30.0, gt=0, description="longest wait between write retries")
    metrics_port: int | None = Field(None, description="serve Prometheus text metrics on this port")
    metrics_host: str = Field("127.0.0.1", description="address the metrics endpoint binds (no authentication: "
                              "0.0.0.0 or a LAN address only behind a firewall)")
    metrics_interval_seconds: float = Field(30.0, gt=0, description="how often the worker logs its metrics")
    index_prefix: str = Field("soc", description="index prefix of a search store")
    index_replicas: int | None = Field(None, ge=0, description="replicas of new event indices (None: the "
                                       "cluster default; 0 on a single node)")


class ReporterIdentity(BaseModel):
    """Who reports (Mẫu 03/04/05 section 1): the province's SOC as a network member."""

    name: str | None = Field(None, description="Tên tổ chức báo cáo sự cố, e.g. 'Công an tỉnh Nghệ An'")
    address: str | None = Field(None, description="Địa chỉ")
    phone: str | None = Field(None, description="Điện thoại")
    email: str | None = Field(None, description="Email")
    member_code: str | None = Field(None, description="Mã thành viên mạng lưới ứng cứu sự cố (Mẫu 05)")
    province: str | None = Field(None, description="province name, e.g. 'Nghệ An'")


class ReportContact(BaseModel):
    """Người liên hệ (Mẫu 03 section 2)."""

    full_name: str | None = None
    position: str | None = None
    phone: str | None = None
    email: str | None = None


class ReportSignatory(BaseModel):
    """Người đại diện theo pháp luật who signs the reports."""

    name: str | None = None
    title: str | None = Field(None, description="Chức vụ, e.g. 'Phó Giám đốc'")


class ReportRecipient(BaseModel):
    """Where reports go: a channel, the profile they are built with, an endpoint."""

    name: str = Field(description="short id, e.g. 'mps-a05'")
    title: str | None = Field(None, description="display name of the recipient authority")
    profile: str = Field("vn.mps.a05-2025", description="profile id (soc/export/profiles/*.yml)")
    channel: str = Field("drop", description="https | email | drop")
    endpoint: str = Field(description="https URL, e-mail address(es) comma-separated, or a folder")
    kinds: list[str] = Field(default_factory=lambda: ["initial", "closing", "summary"],
                             description="which reports go to this recipient: initial, closing, summary")
    token: str | None = Field(None, repr=False, description="https: bearer token inline (logs a warning; "
                              "prefer token_file or token_env)")
    token_env: str | None = Field(None, description="https: name of the environment variable with the token")
    token_file: Path | None = Field(None, description="https: file holding the token")
    client_cert: Path | None = Field(None, description="https: client certificate (PEM) for mutual TLS")
    client_key: Path | None = Field(None, description="https: client key (PEM)")
    ca: Path | None = Field(None, description="https: CA bundle to verify the server (default: system CAs)")
    allow_http: bool = Field(False, description="https channel: allow a plain http:// endpoint that is not on "
                             "this machine (the report and token travel unencrypted); loopback needs no setting")
    timeout_seconds: float = Field(30.0, gt=0, description="https: seconds to wait for the server once "
                                   "connected (read, write), unless read_timeout_seconds is set")
    connect_timeout_seconds: float | None = Field(None, gt=0, description="https: seconds to connect "
                                                  "(TCP and TLS), default min(10, timeout_seconds)")
    read_timeout_seconds: float | None = Field(None, gt=0, description="https: seconds to wait for the "
                                               "server once connected, default timeout_seconds")

    def bearer_token(self) -> str | None:
        """The https bearer token (``token_file``, else ``token_env``, else ``token``); ``None`` when
        none is configured. Raises :class:`soc.secrets.SecretError` when the file or variable is missing."""
        return resolve_secret(self.token, self.token_env, self.token_file,
                              f"reporting.recipients[{self.name}].token")


class SmtpSettings(BaseModel):
    """The one mail server every e-mail goes through (playbook notices, reports to the national
    centre); see :mod:`soc.mail`."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    ca: Path | None = Field(None, description="CA certificates (PEM) the server's certificate must chain "
                            "to, for ssl/starttls (default: the system CAs)")
    username: str | None = None
    password: SecretStr | None = Field(None, description="the SMTP password inline (logs a warning; prefer "
                                       "password_file or password_env)")
    password_env: str | None = Field(None, description="environment variable holding the SMTP password")
    password_file: Path | None = Field(None, description="file holding the SMTP password")
    sender: str | None = Field(None, description="From address (reports default to the reporter's e-mail)")
    timeout_seconds: float = 30.0

    def login_password(self) -> str | None:
        """The SMTP password (``password_file``, else ``password_env``, else ``password``); ``None``
        when none is configured. Raises :class:`soc.secrets.SecretError` when the file or variable
        is missing."""
        return resolve_secret(self.password, self.password_env, self.password_file, "smtp.password")


class PlaybookSettings(BaseModel):
    """The ``playbooks:`` section (``SOC_PLAYBOOKS__...``): soc/playbooks, docs/playbooks.md."""

    folder: Path = Field(default_factory=lambda: content_dir("playbooks"),
                         description="where the playbook YAML files are")
    data_dir: Path | None = Field(None, description="asset and threat-intel lists (default: <folder>/data)")
    lease_seconds: float = Field(60.0, gt=0, description="a running run renews its lease every third of this")
    max_takeovers: int = Field(3, ge=1, description="a run resumed this often after its owner died is failed")
    max_steps_per_run: int = Field(200, ge=1)
    workers: int = Field(2, ge=1, description="runs executed at the same time by `soc run`")
    sweep_seconds: float = Field(30.0, gt=0, description="how often `soc run` looks for stale or due runs")
    catch_up_seconds: float = Field(3600.0, ge=0, description="at start-up, alerts this recent are offered "
                                    "to the playbooks again (idempotent)")
    webhook_timeout: float = Field(15.0, gt=0, description="notify.webhook: seconds to wait for the server "
                                   "once connected (a step's timeout argument overrides it)")
    webhook_connect_timeout: float = Field(5.0, gt=0, description="notify.webhook: seconds to connect (TCP and TLS)")
    webhook_ca: Path | None = Field(None, description="notify.webhook: CA bundle (PEM) to verify webhook servers "
                                    "(default: system CAs); a step's ca argument overrides it")
    webhook_headers: dict[str, str] = Field(default_factory=dict, description="added to every webhook call")
    email_to: list[str] = Field(default_factory=list, description="notify.email recipients when a step names none")
    email_subject_prefix: str = Field("[SOC]", description="prefix of notify.email subjects")
    inputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="input values per playbook id for triggered runs, e.g. {ssh-brute-force: {webhook_url: ...}}; "
                    "they replace the playbook's defaults (a run by hand can still override them)")

    @property
    def data_folder(self) -> Path:
        return self.data_dir or self.folder / "data"


class ReportingSettings(BaseModel):
    """National reporting (soc/export, docs/reporting.md)."""

    reporter: ReporterIdentity = ReporterIdentity()
    contact: ReportContact = ReportContact()
    signatory: ReportSignatory = ReportSignatory()
    default_profile: str = Field("vn.mps.a05-2025", description="profile used when none is named")
    profile_dirs: list[Path] = Field(default_factory=list, description="extra folders of profile YAML files")
    certificate: Path | None = Field(None, description="the province's X.509 signing certificate (PEM)")
    private_key: Path | None = Field(None, description="its private key (PEM)")
    key_password: SecretStr | None = Field(None, description="the key password inline (logs a warning; prefer "
                                           "key_password_file or key_password_env)")
    key_password_env: str | None = Field(None, description="environment variable holding the key password")
    key_password_file: Path | None = Field(None, description="file holding the key password")
    default_notified: list[str] = Field(
        default_factory=list,
        description="Mẫu 03 item 8 when a report does not say: network_member, isp, coordinating_authority")
    recipients: list[ReportRecipient] = Field(default_factory=list)
    out_dir: Path | None = Field(None, description="where built reports are written (default: <data_dir>/reports)")
    schedule: bool = Field(True, description="build periodic summaries on schedule in `soc run`")
    max_attempts: int = Field(8, ge=1, description="delivery attempts before an outbox entry fails")
    retry_base_seconds: float = Field(30.0, gt=0, description="first retry delay; doubles each attempt")
    retry_max_seconds: float = Field(3600.0, gt=0)

    def signing_key_password(self) -> str | None:
        """The private key's password (``key_password_file``, else ``key_password_env``, else
        ``key_password``); ``None`` when none is configured (an unencrypted key). Raises
        :class:`soc.secrets.SecretError` when the file or variable is missing."""
        return resolve_secret(self.key_password, self.key_password_env, self.key_password_file,
                              "reporting.key_password")


class AlertSettings(BaseModel):
    """``alerts:`` (``SOC_ALERTS__...``): the alert workflow's bulk changes (soc/alerts, docs/alerts.md)."""

    bulk_background_threshold: int = Field(500, ge=1, description="a bulk change matching more alerts than "
                                           "this runs as a background job (`soc jobs show ID`)")
    bulk_page_size: int = Field(500, ge=1, le=10000, description="alerts read and changed per page; a job "
                                "saves its progress after each page")
    job_lease_seconds: float = Field(60.0, gt=0, description="a job whose process stopped is taken over "
                                     "after this long")


class TaskSettings(BaseModel):
    """``tasks:`` (``SOC_TASKS__...``): remediation tasks sent to agencies (soc/incidents/remediation.py)."""

    notify: bool = Field(True, description="e-mail the agency's contacts when a task is sent and when it is done")
    soc_email: list[str] = Field(default_factory=list, description="the SOC's addresses, told when an agency "
                                 "marks a task done")
    subject_prefix: str = Field("[SOC]", description="prefix of task e-mail subjects")


class AuditSettings(BaseModel):
    """``audit:`` (``SOC_AUDIT__...``): the audit trail (soc/audit, docs/audit.md)."""

    checkpoint_file: Path | None = Field(None, description="where `soc audit checkpoint` appends the chain's head "
                                         "(default: <data_dir>/audit-checkpoints.jsonl); keep a copy outside the "
                                         "store's reach")
    checkpoint_minutes: int = Field(60, ge=0, description="the running service appends the chain's head to the "
                                    "checkpoint file this often (0: never; then run `soc audit checkpoint` "
                                    "from cron)")


class OversightSettings(BaseModel):
    """``oversight:`` (``SOC_OVERSIGHT__...``): the health page, the dashboard and the honest time
    figures of the summaries (soc/oversight, soc/export/measures.py)."""

    backfill_hours: float = Field(24.0, gt=0, description="an event stored more than this long after it happened "
                                  "is back-filled: its incident is counted apart from MTTD (replayed old logs "
                                  "would otherwise say MTTD = months)")
    silent_minutes: float = Field(60.0, gt=0, description="a source that sent events in the window but none for "
                                  "this long is silent")
    silent_window_hours: float = Field(24.0, gt=0, description="how far back a source must have sent events to be "
                                       "watched for silence")
    silent_check_minutes: int = Field(15, ge=0, description="the running service checks for silent sources this "
                                      "often and raises an alert for each newly silent one (0: never)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOC_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("soc-data"), description="where the embedded store and inbox live")
    store_url: str | None = Field(
        None, description="sqlite:///path.db | opensearch://host:port | elasticsearch+https://user@host:port "
                          "(the password from store_password_file/_env, not in the URL)"
    )
    store_password: SecretStr | None = Field(None, description="the store password inline (logs a warning; "
                                             "prefer store_password_file or store_password_env)")
    store_password_env: str | None = Field(None, description="environment variable holding the store password")
    store_password_file: Path | None = Field(None, description="file holding the store password; it is put "
                                             "into store_url's user part when connecting")
    timezone: str = Field(DEFAULT_TIMEZONE, description="zone shown to analysts and default source zone")
    retention_days: int = Field(180, ge=1)
    rule_dirs: list[Path] = Field(default_factory=list, description="extra Sigma rule folders")
    syslog: SyslogSettings = SyslogSettings()
    detection: DetectionSettings = DetectionSettings()
    kafka: KafkaSettings = KafkaSettings()
    search_sources: list[SearchSourceSettings] = Field(
        default_factory=list, description="logs already in the search cluster (winlogbeat-*, logs-*-*) that "
                                          "detection and event search query in place (issue #14)")
    reporting: ReportingSettings = ReportingSettings()
    playbooks: PlaybookSettings = Field(default_factory=PlaybookSettings)
    smtp: SmtpSettings = SmtpSettings()
    alerts: AlertSettings = AlertSettings()
    tasks: TaskSettings = TaskSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()
    oversight: OversightSettings = OversightSettings()
    api: ApiSettings = Field(default_factory=ApiSettings)
    taxii: TaxiiSettings = Field(default_factory=TaxiiSettings)
    intel: IntelSettings = Field(default_factory=IntelSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as {DEFAULT_TIMEZONE})") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_store_url(self) -> str:
        """``store_url`` as configured (else SQLite in the data dir): not to be shown as it is (see
        :meth:`store_display_url`), nor to connect with (see :meth:`store_connect_url`)."""
        return self.store_url or f"sqlite:///{(self.data_dir / 'soc.db').resolve()}"

    def store_login_password(self) -> str | None:
        """The store password from ``store_password_file``, ``store_password_env`` or
        ``store_password``; ``None`` when none of them is set."""
        return resolve_secret(self.store_password, self.store_password_env, self.store_password_file,
                              "store_password")

    def _store_password_set(self) -> bool:
        return bool(self.store_password or self.store_password_env or self.store_password_file)

    def store_connect_url(self, url: str | None = None) -> str:
        """The URL to open the store with: ``url`` (default: the configured one) with the store
        password inserted into its user part. Never show or log it: use :meth:`store_display_url`.

        The configured URL must then name the user and carry no password itself; a URL given
        on the command line gets the password only when it names a user without one."""
        explicit = url is not None
        url = url or self.resolved_store_url
        if url.startswith("sqlite") or not self._store_password_set():
            return url
        if explicit and (url_password(url) is not None or url_username(url) is None):
            return url
        password = self.store_login_password()
        return url_with_password(url, password) if password else url

    def store_display_url(self, url: str | None = None) -> str:
        """The store URL fit to show and log: ``scheme://user:***@host:port`` whether the password
        is in the URL or comes from ``store_password_*``."""
        url = url or self.resolved_store_url
        if self._store_password_set() and url_password(url) is None and not url.startswith("sqlite"):
            try:
                url = url_with_password(url, "x")  # only to show that a password is used
            except ValueError:
                pass
        return mask_url(url)

    def inline_secrets(self) -> list[tuple[str, str, str]]:
        """``(setting, file setting, env setting)`` of each secret written in clear text in the
        settings, e.g. ``("smtp.password", "smtp.password_file", "smtp.password_env")``."""
        found = []
        if self.store_url and url_password(self.store_url):
            found.append(("the password in store_url", "store_password_file", "store_password_env"))
        if self.store_password:
            found.append(("store_password", "store_password_file", "store_password_env"))
        if self.smtp.password:
            found.append(("smtp.password", "smtp.password_file", "smtp.password_env"))
        if self.reporting.key_password:
            found.append(("reporting.key_password", "reporting.key_password_file", "reporting.key_password_env"))
        found += self.syslog.tls.inline_secrets("syslog.tls") + self.kafka.inline_secrets("kafka")
        for r in self.reporting.recipients:
            if r.token:
                where = f"reporting.recipients[{r.name}]"
                found.append((f"{where}.token", f"{where}.token_file", f"{where}.token_env"))
        return found

    def warn_inline_secrets(self) -> None:
        """Log a warning (once per process and secret) for each of :meth:`inline_secrets`."""
        for name, file_field, env_field in self.inline_secrets():
            warn_inline(name, file_field, env_field)

    def secret_values(self) -> list[str]:
        """Every secret value these settings name and that can be read now (for log redaction)."""
        from urllib.parse import unquote

        in_url = url_password(self.resolved_store_url)
        values = [unquote(in_url)] if in_url else []
        values += [v for k, v in self.playbooks.webhook_headers.items() if is_secret_name(k) and v]
        readers = [self.store_login_password, self.smtp.login_password, self.reporting.signing_key_password,
                   self.syslog.tls.private_key_password, self.kafka.ssl_key_secret, self.kafka.sasl_secret,
                   *(r.bearer_token for r in self.reporting.recipients)]
        for read in readers:
            try:
                value = read()
            except ValueError:  # SecretError: reported where the secret is used
                continue
            if value:
                values.append(value)
        return values

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "store_url" and isinstance(value, str) else value

    @property
    def inbox(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def dead_letter_dir(self) -> Path:
        return self.data_dir / "dead-letter"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``SOC_CONFIG`` (which must exist) or ``./soc.yml`` when present; raises
    :class:`ConfigError` when it cannot be read."""

    def _load(self) -> dict[str, Any]:
        found = read_settings_file(os.environ)
        return found.data if found is not None else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._load().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._load()


@dataclass
class SettingsCheck:
    """What :func:`check_settings` found: the settings (``None`` when they are invalid), every
    problem, the file read (``None``: there is none) and the variables that set settings."""

    settings: Settings | None
    problems: list[Problem]
    file: SettingsFile | None
    environment: EnvironmentSettings
    error: Exception | None = None  # pydantic's error when the values are invalid (for --debug)


def check_settings(**overrides: Any) -> SettingsCheck:
    """Read the settings strictly and collect every problem (unknown keys in the file, unknown
    ``SOC_...`` variables, invalid values) instead of stopping at the first. Raises
    :class:`ConfigError` (``unreadable``) only when the settings file cannot be read at all."""
    file = read_settings_file(os.environ)
    data = file.data if file is not None else {}
    problems = [Problem(file.where(u.loc), u.message()) for u in unknown_keys(Settings, data)] if file else []
    named = {v for k, v in os.environ.items() if k.upper().startswith("SOC_") and k.upper().endswith("_ENV")}
    env = environment_settings(Settings, os.environ, reserved_names=RESERVED_ENV_NAMES,
                               reserved_prefixes=RESERVED_ENV_PREFIXES, allowed=secret_env_names(data) | named)
    settings, failure = None, None
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        problems += explain_validation_error(error, file, env, overrides)
        failure = error
    except SettingsError as error:
        problems.append(explain_settings_error(error, env))
        failure = error
    if file is not None:  # the file's problems in the order of its lines, then the variables'
        problems.sort(key=lambda p: _order(p.where, file.name))
    return SettingsCheck(settings, problems + env.problems, file, env, failure)


def _order(where: str, name: str) -> tuple[int, int]:
    """``soc.yml:LINE`` first, by line; then the rest (variables, options) as they came."""
    line = where.removeprefix(f"{name}:").partition(":")[0]
    return (0, int(line)) if where.startswith(f"{name}:") and line.isdigit() else (1, 0)


def load_settings(**overrides: Any) -> Settings:
    """The settings (see the module docstring); warns once about secrets written in clear text.
    Raises :class:`ConfigError` naming every problem (file and line, or variable)."""
    checked = check_settings(**overrides)
    if checked.problems or checked.settings is None:
        raise ConfigError(checked.problems or ["the settings are invalid"]) from checked.error
    checked.settings.warn_inline_secrets()
    return checked.settings
