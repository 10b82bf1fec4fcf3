"""Fixtures shared by the service-layer tests: a Deps over SQLite, local blobs and fakes (`env`)
and a merchant in it (`merchant`), defined in test_handlers."""

from tests.unit.test_handlers import env, merchant

__all__ = ["env", "merchant"]
