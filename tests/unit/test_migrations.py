"""Schema migrations keep existing data: a merchant's single webhook URL becomes its first endpoint."""

from __future__ import annotations

import sqlalchemy as sa

from service.adapters.db import make_engine, migrate


def test_the_legacy_webhook_url_becomes_an_endpoint_with_the_same_secret(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url, "0002")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO merchants (id, name, webhook_url, webhook_secret, created_at) "
                "VALUES ('m1', 'Old shop', 'https://hooks.example.com/h', 'whsec_c2VjcmV0', '2026-01-01'),"
                " ('m2', 'No hook', NULL, NULL, '2026-01-01')"
            )
        )
    migrate(url)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text("SELECT merchant_id, url, secret, events, enabled FROM webhook_endpoints")
        ).fetchall()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("m1", "https://hooks.example.com/h", "whsec_c2VjcmV0", "report.completed,report.failed", 1)
    ]


def _at_revision_with_a_merchant(tmp_path, revision: str) -> tuple[str, sa.Engine]:
    """A SQLite database migrated up to `revision` holding merchant m1 ("Shop")."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url, revision)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO merchants (id, name, created_at) VALUES ('m1', 'Shop', '2026-01-01')")
        )
    return url, engine


def test_migration_0005_adds_per_merchant_policy_overrides_and_keeps_merchants(tmp_path):
    """From 0004: existing merchants stay; a merchant's overrides per profile are stored as JSON."""
    url, engine = _at_revision_with_a_merchant(tmp_path, "0004")
    migrate(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO merchant_policies (merchant_id, profile, overrides, updated_at) "
                "VALUES ('m1', 'amazon_main', '{\"min_product_fill\": 0.8}', '2026-01-02')"
            )
        )
        rows = conn.execute(
            sa.text("SELECT merchant_id, profile, overrides FROM merchant_policies")
        ).fetchall()
        names = conn.execute(sa.text("SELECT name FROM merchants")).scalars().all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("m1", "amazon_main", '{"min_product_fill": 0.8}')]
    assert names == ["Shop"]


def test_migration_0006_counts_resubmits_and_keeps_audit_objects(tmp_path):
    """From 0005: an audit's objects stay as they were and start with no resubmits."""
    url, engine = _at_revision_with_a_merchant(tmp_path, "0005")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audits (id, merchant_id, profile, source_kind, source_uri, destination_uri,"
                " status, listing_done, created_at, updated_at) VALUES ('a1', 'm1', 'default', 'prefix',"
                " 's3://shop/k/', 's3://out/r', 'RUNNING', 1, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO audit_objects (audit_id, bucket, key, version_id, etag, size, status)"
                " VALUES ('a1', 'shop', 'k/1.jpg', '', 'e1', 10, 'QUEUED')"
            )
        )
    migrate(url)
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT key, status, resubmits FROM audit_objects")).fetchall()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("k/1.jpg", "QUEUED", 0)]
