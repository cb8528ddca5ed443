"""Playbook settings: the ``playbooks:`` section of the settings file plus
``SOC_PLAYBOOKS__...`` environment variables (``SOC_PLAYBOOKS__SMTP__HOST=mail.tinh.gov.vn``).

Kept apart from :mod:`soc.config` so the engine's settings stay in one place; every value has
a safe default for the embedded service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from soc.config import content_dir


class SmtpSettings(BaseModel):
    host: str = Field("localhost", description="SMTP server")
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = Field(None, description="prefer SOC_PLAYBOOKS__SMTP__PASSWORD in the environment")
    sender: str = "soc@localhost"
    default_to: list[str] = Field(default_factory=list)
    subject_prefix: str = "[SOC]"
    timeout: float = 30.0


class PlaybookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOC_PLAYBOOKS__", env_nested_delimiter="__", extra="ignore")

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
    smtp: SmtpSettings = SmtpSettings()
    inputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="input values per playbook id for triggered runs, e.g. {ssh-brute-force: {webhook_url: ...}}; "
                    "they replace the playbook's defaults (a run by hand can still override them)")

    @property
    def data_folder(self) -> Path:
        return self.data_dir or self.folder / "data"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSection(settings_cls))


class _YamlSection(PydanticBaseSettingsSource):
    """The ``playbooks:`` mapping of ``SOC_CONFIG`` or ``./soc.yml``."""

    def _load(self) -> dict[str, Any]:
        path = Path(os.environ.get("SOC_CONFIG", "soc.yml"))
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = data.get("playbooks") if isinstance(data, dict) else None
        return section if isinstance(section, dict) else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._load().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._load()
