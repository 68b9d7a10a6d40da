"""Network addresses: whether an interface a server binds is reachable only from this machine
(what lets the prediction service and the MLflow server start without an explicit opt-in)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (IPv4 or IPv6, brackets and zone allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False
