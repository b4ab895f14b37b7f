"""Log in with an email address and a password (the username field of the login form holds the email)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user_model = get_user_model()
        user = user_model._default_manager.filter(email__iexact=username.strip()).order_by("id").first()
        if user is None:
            user_model().set_password(password)  # same work as a real check: no timing oracle for unknown emails
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
