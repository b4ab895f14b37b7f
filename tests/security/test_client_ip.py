"""The client's address through our proxies: X-Forwarded-For believed only as far as our proxies wrote it."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from security.client_ip import client_ip


def request(remote="203.0.113.9", forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.mark.parametrize(
    ("networks", "count", "remote", "forwarded", "expected"),
    [
        ([], 0, "203.0.113.9", "1.2.3.4", "203.0.113.9"),  # reached directly: the header is anyone's
        ([], 1, "10.0.0.2", "198.51.100.7", "198.51.100.7"),  # one proxy appended the client
        ([], 1, "10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a forged hop to the left is ignored
        ([], 2, "10.0.0.2", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # two proxies
        ([], 2, "10.0.0.2", "198.51.100.7", None),  # fewer hops than proxies: nothing to believe
        (["10.0.0.0/8"], 0, "10.0.0.2", "6.6.6.6, 198.51.100.7, 10.1.1.1", "198.51.100.7"),
        (["10.0.0.0/8"], 0, "203.0.113.9", "198.51.100.7", "203.0.113.9"),  # not via our proxy: the peer
        (["10.0.0.0/8"], 0, "10.0.0.2", "not-an-ip, 10.1.1.1", None),
        (["10.0.0.0/8", "2001:db8::/32"], 0, "2001:db8::1", "2001:db8::2, 2a00:1450::5, 10.0.0.3", "2a00:1450::5"),
        ([], 0, "garbage", None, None),
    ],
)
def test_client_ip(settings, networks, count, remote, forwarded, expected):
    settings.TRUSTED_PROXY_NETWORKS, settings.TRUSTED_PROXY_COUNT = networks, count
    assert client_ip(request(remote, forwarded)) == expected
