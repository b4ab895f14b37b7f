import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"equity_connect.settings.{os.environ.get('DJANGO_ENV', 'local')}")
application = get_asgi_application()
