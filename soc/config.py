"""Settings: one YAML file plus ``SOC_...`` environment variables, safe embedded defaults.

Precedence (highest first): environment variables (``SOC_DATA_DIR``, ``SOC_STORE_URL``,
``SOC_DETECTION__INTERVAL_SECONDS`` ...), the YAML file named by ``SOC_CONFIG`` (or ``soc.yml``
in the working directory), then the defaults below, which run the embedded service on one
machine with nothing to install.

Content folders (``ingest/``, ``detections/``, ``playbooks/``) are found next to the working
directory first, then next to the installed package (a source checkout).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def content_dir(name: str) -> Path:
    """``name`` (ingest, detections, playbooks) in the working directory, else in the checkout."""
    here = Path.cwd() / name
    return here if here.is_dir() else PROJECT_ROOT / name


class SyslogSettings(BaseModel):
    udp: str | None = Field("0.0.0.0:5514", description="UDP listen address, or empty to disable")
    tcp: str | None = Field("0.0.0.0:5514", description="TCP listen address, or empty to disable")
    max_message_bytes: int = Field(65536, description="longer messages are dead-lettered")


class DetectionSettings(BaseModel):
    interval_seconds: int = Field(60, ge=1, description="default run interval of a rule")
    overlap_seconds: int = Field(120, ge=0, description="each run re-reads this much before its watermark")
    settle_seconds: int = Field(5, ge=0, description="each run stops this far before now")
    max_concurrent_rules: int = Field(2, ge=1, description="rules evaluated at the same time")
    query_timeout_seconds: int = Field(60, ge=1)
    max_alerts_per_run: int = Field(1000, ge=1, description="a run that hits this says so")


class KafkaSettings(BaseModel):
    """The Kafka ingest path (``soc kafka ...``, see docs/kafka.md)."""

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
    token: str | None = Field(None, description="https: bearer token (prefer token_env)")
    token_env: str | None = Field(None, description="https: name of the environment variable with the token")
    client_cert: Path | None = Field(None, description="https: client certificate (PEM) for mutual TLS")
    client_key: Path | None = Field(None, description="https: client key (PEM)")
    ca: Path | None = Field(None, description="https: CA bundle to verify the server (default: system CAs)")
    timeout_seconds: float = 30.0


class SmtpSettings(BaseModel):
    """The one mail server every e-mail goes through (playbook notices, reports to the national
    centre); see :mod:`soc.mail`."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the SMTP password")
    sender: str | None = Field(None, description="From address (reports default to the reporter's e-mail)")
    timeout_seconds: float = 30.0


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
    webhook_timeout: float = 15.0
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
    key_password_env: str | None = Field(None, description="environment variable holding the key password")
    default_notified: list[str] = Field(
        default_factory=list,
        description="Mẫu 03 item 8 when a report does not say: network_member, isp, coordinating_authority")
    recipients: list[ReportRecipient] = Field(default_factory=list)
    out_dir: Path | None = Field(None, description="where built reports are written (default: <data_dir>/reports)")
    schedule: bool = Field(True, description="build periodic summaries on schedule in `soc run`")
    max_attempts: int = Field(8, ge=1, description="delivery attempts before an outbox entry fails")
    retry_base_seconds: float = Field(30.0, gt=0, description="first retry delay; doubles each attempt")
    retry_max_seconds: float = Field(3600.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOC_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("soc-data"), description="where the embedded store and inbox live")
    store_url: str | None = Field(
        None, description="sqlite:///path.db | opensearch://host:port | elasticsearch://host:port"
    )
    timezone: str = Field(DEFAULT_TIMEZONE, description="zone shown to analysts and default source zone")
    retention_days: int = Field(180, ge=1)
    rule_dirs: list[Path] = Field(default_factory=list, description="extra Sigma rule folders")
    syslog: SyslogSettings = SyslogSettings()
    detection: DetectionSettings = DetectionSettings()
    kafka: KafkaSettings = KafkaSettings()
    reporting: ReportingSettings = ReportingSettings()
    playbooks: PlaybookSettings = Field(default_factory=PlaybookSettings)
    smtp: SmtpSettings = SmtpSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises a clear error for an unknown zone name
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
        return self.store_url or f"sqlite:///{(self.data_dir / 'soc.db').resolve()}"

    @property
    def inbox(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def dead_letter_dir(self) -> Path:
        return self.data_dir / "dead-letter"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``SOC_CONFIG`` or ``./soc.yml`` when present."""

    def _load(self) -> dict[str, Any]:
        path = Path(os.environ.get("SOC_CONFIG", "soc.yml"))
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings at the top level")
        return data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._load().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._load()


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
