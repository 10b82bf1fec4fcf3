"""Settings: read once from the environment, typed, with safe production rules."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from service.settings import DEV_PEPPER, Settings, SettingsError, env_name

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_run_on_embedded_services():
    """With no environment the stack uses SQLite, the SQLite broker and local blob files."""
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.broker_url.startswith("sqla+sqlite:///")
    assert s.blob_url.startswith("file://")
    assert s.environment == "development"
    assert s.upload_limit_bytes == 64 * 1024 * 1024
    assert s.unary_limit_bytes == 4 * 1024 * 1024


def test_values_are_parsed_to_their_field_types():
    """Integers, floats and booleans come back typed, not as strings."""
    s = Settings.from_env(
        {
            "IDETEX_UPLOAD_LIMIT_BYTES": "1000",
            "IDETEX_UNARY_LIMIT_BYTES": "10",
            "IDETEX_SYNC_POLL_INTERVAL_S": "0.05",
            "IDETEX_WEBHOOK_ALLOW_PRIVATE": "yes",
        }
    )
    assert (s.upload_limit_bytes, s.unary_limit_bytes) == (1000, 10)
    assert s.sync_poll_interval_s == 0.05
    assert s.webhook_allow_private is True


def test_database_url_falls_back_to_the_conventional_name():
    """DATABASE_URL works when IDETEX_DATABASE_URL is not set, and loses when it is."""
    pg = "postgresql+psycopg2://u@h/db"
    assert Settings.from_env({"DATABASE_URL": pg}).database_url == pg
    both = {"DATABASE_URL": pg, "IDETEX_DATABASE_URL": "sqlite:///x.db"}
    assert Settings.from_env(both).database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    "env",
    [
        {"IDETEX_MAX_PIXELS": "many"},
        {"IDETEX_WEBHOOK_ALLOW_PRIVATE": "perhaps"},
        {"IDETEX_ENVIRONMENT": "staging"},
        {"IDETEX_TRITON_PROTOCOL": "smoke-signals"},
        {"IDETEX_UNARY_LIMIT_BYTES": str(128 * 1024 * 1024)},
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(env):
    """A bad value raises SettingsError naming the variable or the rule it breaks."""
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_production_refuses_the_default_pepper():
    """IDETEX_ENVIRONMENT=production will not start with the development API key pepper."""
    with pytest.raises(SettingsError, match="IDETEX_API_KEY_PEPPER"):
        Settings.from_env({"IDETEX_ENVIRONMENT": "production"})
    with pytest.raises(SettingsError):
        Settings.from_env({"IDETEX_ENVIRONMENT": "production", "IDETEX_API_KEY_PEPPER": DEV_PEPPER})
    ok = Settings.from_env(
        {
            "IDETEX_ENVIRONMENT": "production",
            "IDETEX_API_KEY_PEPPER": "x" * 32,
            "IDETEX_REPORT_LINK_SECRET": "y" * 32,
        }
    )
    assert ok.environment == "production"


def test_production_refuses_the_default_report_link_secret():
    """Signed report links need a real secret in production, unless the report pages are off."""
    env = {"IDETEX_ENVIRONMENT": "production", "IDETEX_API_KEY_PEPPER": "x" * 32}
    with pytest.raises(SettingsError, match="IDETEX_REPORT_LINK_SECRET"):
        Settings.from_env(env)
    with pytest.raises(SettingsError, match="IDETEX_REPORT_LINK_SECRET"):
        Settings.from_env(env | {"IDETEX_REPORT_LINK_SECRET": "short"})
    off = Settings.from_env(env | {"IDETEX_HTTP_ADDR": "off"})
    assert off.http_listen_addr() == "" and off.report_links_base() == ""
    public = Settings(report_base_url="https://reports.example.com/", http_addr="0.0.0.0:8080")
    assert public.report_links_base() == "https://reports.example.com"
    assert Settings().report_links_base() == "http://127.0.0.1:8080"


def test_production_refuses_private_webhook_destinations():
    """Allowing webhooks into private networks is a development-only switch."""
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_PRIVATE"):
        Settings.from_env(
            {
                "IDETEX_ENVIRONMENT": "production",
                "IDETEX_API_KEY_PEPPER": "x" * 32,
                "IDETEX_WEBHOOK_ALLOW_PRIVATE": "1",
            }
        )


def test_every_setting_is_documented():
    """docs/configuration.md has a table row for every environment variable Settings reads."""
    documented = set(re.findall(r"^\|\s*`([A-Z0-9_]+)`", DOCS.read_text(), flags=re.M))
    wanted = {env_name(f.name) for f in dataclasses.fields(Settings)} | {"DATABASE_URL", "BROKER_URL"}
    assert wanted - documented == set()


def test_model_choice_and_mllm_family_are_checked():
    """An unknown model choice or MLLM chat family stops the process, naming the variable."""
    assert Settings.from_env({"IDETEX_MODEL_CHOICE": "both"}).model_choice == "both"
    with pytest.raises(SettingsError, match="IDETEX_MODEL_CHOICE"):
        Settings.from_env({"IDETEX_MODEL_CHOICE": "gpt"})
    with pytest.raises(SettingsError, match="IDETEX_VLM_FAMILY"):
        Settings.from_env({"IDETEX_VLM_FAMILY": "llava"})
