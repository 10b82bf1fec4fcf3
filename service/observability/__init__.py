"""Metrics (Prometheus) and structured logs for the API, the workers and the CLI (docs/reliability.md)."""
