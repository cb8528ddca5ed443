"""Versioned report profiles by recipient, as data (``soc/export/profiles/*.yml``).

A profile says which documents a recipient takes (initial, closing, mau05, monitoring), in which
formats (json, docx, stix, misp), under which legal basis and schema version. Renamed authorities
or new forms are a new YAML file (here or in ``reporting.profile_dirs``), not new code. Every
exported document carries ``profile_id``, ``schema_version`` and ``legal_basis``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from soc.errors import SocError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
DocumentKind = Literal["initial", "closing", "mau05", "monitoring"]
Format = Literal["json", "docx", "stix", "misp"]


class InForce(BaseModel):
    from_: str | None = Field(None, alias="from")
    to: str | None = None


class Profile(BaseModel):
    id: str
    schema_version: str
    title: str
    recipient: str
    addressee: str | None = None
    in_force: InForce = InForce()
    superseded_by: str | None = None
    draft: bool = False
    legal_basis: list[str]
    documents: list[DocumentKind]
    formats: list[Format]
    email_subject_prefix: str = "[TBSC]"
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber+strict"


class ProfileError(SocError, ValueError):
    pass


def load_profiles(extra_dirs: Iterable[Path] = ()) -> dict[str, Profile]:
    """Every profile shipped with the package plus those in ``extra_dirs`` (later ones win)."""
    profiles: dict[str, Profile] = {}
    for folder in (PROFILE_DIR, *extra_dirs):
        folder = Path(folder)
        if not folder.is_dir():
            raise ProfileError(f"profile folder {folder} does not exist (reporting.profile_dirs)")
        for path in sorted(folder.glob("*.yml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                profile = Profile.model_validate(data)
            except (yaml.YAMLError, ValidationError) as error:
                raise ProfileError(f"{path}: not a valid report profile: {error}") from error
            if profile.id != path.stem:
                raise ProfileError(f"{path}: id {profile.id!r} must match the file name")
            profiles[profile.id] = profile
    return profiles


def get_profile(profile_id: str, extra_dirs: Iterable[Path] = ()) -> Profile:
    profiles = load_profiles(extra_dirs)
    if profile_id not in profiles:
        raise ProfileError(f"unknown report profile {profile_id!r}; known: {', '.join(sorted(profiles))}")
    return profiles[profile_id]
