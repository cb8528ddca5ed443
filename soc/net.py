"""Network addresses: which hosts are this machine, and how a listening address is described
to an operator (the start-up banners say who can reach each port)."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host", "listen_address"]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses 127.0.0.0/8 and ``::1``. Names are not
    resolved: only these literals count."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listen_address(host: str, port: int) -> str:
    """``host:port`` of a listening socket and who can reach it: ``0.0.0.0:5514 (all interfaces)``,
    ``127.0.0.1:9108 (this machine only)``, ``[::1]:9108 (this machine only)``."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"{host}:{port}"
    shown = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    if ip.is_unspecified:
        return f"{shown} (all interfaces)"
    if ip.is_loopback:
        return f"{shown} (this machine only)"
    return shown
