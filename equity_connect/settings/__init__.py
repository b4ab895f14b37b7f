"""Settings package: `base` holds everything; `local`, `test` and `production` only differ by flags.

`manage.py`, WSGI and ASGI pick `equity_connect.settings.<DJANGO_ENV>` (default `local`) unless
DJANGO_SETTINGS_MODULE is set.
"""
