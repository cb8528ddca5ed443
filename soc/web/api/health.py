"""``GET /api/v1/health``: whether the service answers (no credentials needed, nothing revealed)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health", summary="The service answers")
def health() -> dict[str, str]:
    return {"status": "ok"}
