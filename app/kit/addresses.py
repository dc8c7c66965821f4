"""Client addresses as limits and lockouts count them."""

from __future__ import annotations

import ipaddress


def address_key(address: str) -> str:
    """What a client address is counted as: an IPv4 address as it is, an IPv6 address by its /64 (one
    subscriber is usually given a whole /64, so counting single addresses would give them 2^64 tries)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
