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
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "soc.logs"
    dead_letter_topic: str = "soc.logs.dlq"
    group: str = "soc-ingest"
    batch_size: int = 2000


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
