"""What a server error shows when DEBUG is on (a local checkout): the technical page to staff only, and never a
secret in it.

- `SecretsHidingFilter` (DEFAULT_EXCEPTION_REPORTER_FILTER): Django's filter hides settings and request headers
  named like API, AUTH, TOKEN, KEY, SECRET, PASS, SIGNATURE; this one also hides every database setting and
  every URL (DATABASE_URL and DATABASE_ADMIN_URL carry passwords; REDIS_URL and ALERT_WEBHOOK_URL may), so
  also the copies of the process environment that runserver puts into the request.
- `StaffOnlyExceptionReporter` (DEFAULT_EXCEPTION_REPORTER): anyone but an active staff user gets the ordinary
  500 page, as in production. Error mails to admins (`is_email`) keep the full report.
"""

from __future__ import annotations

import re

from django.views import debug
from django.views.defaults import server_error


class SecretsHidingFilter(debug.SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DATABASE|DSN|URL|REDIS", flags=re.I
    )


def _is_staff(request) -> bool:
    try:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_active and user.is_staff)
    except Exception:  # the user could not even be loaded: certainly not shown the technical page
        return False


class StaffOnlyExceptionReporter(debug.ExceptionReporter):
    def _for_staff(self) -> bool:
        return self.is_email or (self.request is not None and _is_staff(self.request))

    def get_traceback_html(self):
        if self._for_staff():
            return super().get_traceback_html()
        return server_error(self.request).content.decode()

    def get_traceback_text(self):
        if self._for_staff():
            return super().get_traceback_text()
        return "Server Error (500)\n"
