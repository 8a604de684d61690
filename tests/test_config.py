"""Configuration: production refuses to start without its secrets."""

from __future__ import annotations

import pytest

from config import ProductionConfig, config_from_env


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        ProductionConfig()
    monkeypatch.setenv("SECRET_KEY", "too-short")
    with pytest.raises(RuntimeError, match="at least 32 characters"):
        ProductionConfig()


def test_production_needs_a_database_url(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        ProductionConfig()


def test_production_config_from_environment(monkeypatch):
    monkeypatch.setenv("ESCALATE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
    config = config_from_env()
    assert config.SECRET_KEY == "s" * 64
    assert config.SESSION_COOKIE_SECURE is True
    assert config.SCHEDULER_MODE == "off"


def test_unknown_environment_name_fails_loudly(monkeypatch):
    monkeypatch.setenv("ESCALATE_ENV", "staging-ish")
    with pytest.raises(ValueError, match="ESCALATE_ENV"):
        config_from_env()
