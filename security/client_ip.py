"""The client's IP address as a person behind our proxies sees it, for lockouts, throttles, consent records
and the /metrics allow-list: one place, one rule.

`REMOTE_ADDR` is the last hop. Behind a load balancer or proxy it is the proxy, and the client is in
`X-Forwarded-For`, which anyone can also write into. So the header is believed only as far as our own
proxies wrote it:
- `TRUSTED_PROXY_NETWORKS` (CIDRs): walk the chain from the right while the hop is one of our proxies; the
  first hop that is not is the client;
- else `TRUSTED_PROXY_COUNT` (n): the n-th address from the right is the client (each of our n proxies
  appended one);
- neither: `REMOTE_ADDR` (the app is reached directly).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address (a string), or None when the request carries no usable one."""
    remote = _address(request.META.get("REMOTE_ADDR", "") or "")
    if remote is None:
        return None
    forwarded = [hop.strip() for hop in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
    networks = _networks(tuple(settings.TRUSTED_PROXY_NETWORKS))
    if networks:
        chain = [*forwarded, str(remote)]
        for hop in reversed(chain):
            address = _address(hop)
            if address is None:
                return None  # a malformed hop written by someone we do not trust: no client address
            if not any(address in network for network in networks):
                return str(address)
        return str(_address(chain[0]))  # every hop is ours: the first one is as far as we can see
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        if len(forwarded) < count:
            return None  # our proxies did not all pass the request on: there is no address to believe
        address = _address(forwarded[-count])
        return str(address) if address else None
    return str(remote)
