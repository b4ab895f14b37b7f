"""A Django field for a PostgreSQL enum type (created by a RunSQL migration)."""

from django.db import models


class PgEnumField(models.CharField):
    """Stored as the PostgreSQL enum `enum_name`; Python sees plain strings, limited to `choices`."""

    def __init__(self, *args, enum_name: str, **kwargs):
        self.enum_name = enum_name
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["enum_name"] = self.enum_name
        return name, path, args, kwargs

    def db_type(self, connection):
        return self.enum_name

    def rel_db_type(self, connection):
        return self.enum_name

    def get_placeholder(self, value, compiler, connection):
        return f"%s::{self.enum_name}"
