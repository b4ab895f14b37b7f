"""Response headers every page gets (static files, served by whitenoise before this middleware, do not):

- `Content-Security-Policy` (CONTENT_SECURITY_POLICY): scripts only from our own static files, never inline, no
  plugins, no framing, forms post only to us. Styles may be inline: the Django admin's own templates and
  django-import-export's write `<style>` blocks and `style` attributes, and a style cannot run code.
- `Cache-Control: no-store` (with Django's never-cache headers) on every response to a logged-in user: the
  portal, the admin and the exports all show lead data, and no browser or proxy cache may keep a copy. The
  consent page, public but about one lead, says the same itself (leads/views/consent.py, with
  `Referrer-Policy: no-referrer` for its token-bearing URL).
"""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import add_never_cache_headers, patch_cache_control


def no_store(response):
    """Never kept by a browser or a proxy cache (Django's never-cache headers, which include `no-store`)."""
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            no_store(response)
        return response
