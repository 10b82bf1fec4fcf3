"""Celery worker entrypoint: `celery -A workers.celery_app worker` (see docs/configuration.md)."""
