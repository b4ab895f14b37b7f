"""`/`: where the site's root sends each visitor (staff, brokers, anyone else); the admin's "View site" links here."""

from django.urls import path

from .views import accounts

urlpatterns = [path("", accounts.root, name="root")]
