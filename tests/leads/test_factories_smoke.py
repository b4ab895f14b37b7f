import pytest

from tests import factories


@pytest.mark.django_db
def test_every_factory_creates_a_row_under_rls():
    names = [name for name in dir(factories) if name.endswith("Factory") and name not in ("ServiceFactory",)]
    created = {name: getattr(factories, name)() for name in names}
    assert all(obj.pk is not None for obj in created.values())
    assert created["PartnerKeyFactory"].plain_secret.startswith("test-partner-secret-")
