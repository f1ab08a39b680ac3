"""``allow_ips`` / ``deny_ips``: CIDR rules on the client address.

The address is the one ``trusted_proxies`` establishes (ProxyFix has already
replaced ``REMOTE_ADDR``). A deny rule wins over an allow rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from flask import request

from ..config import IPNetwork
from ..errors import GatewayError
from . import Policy


def address_in(address: str | None, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class IpRules(Policy):
    step = "ip-rules"

    def __init__(self, allow: tuple[IPNetwork, ...], deny: tuple[IPNetwork, ...]):
        self.allow, self.deny = allow, deny

    def before(self):
        address = request.remote_addr
        if address_in(address, self.deny) or (self.allow and not address_in(address, self.allow)):
            raise GatewayError(403, "ip_forbidden", f"requests from {address} are not allowed here")
        return None
