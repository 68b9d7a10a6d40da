"""Alpaca credentials come from the environment or from a secret file (``*_FILE``, what Docker
secrets and systemd's LoadCredential hand over), never from argv; a file and a value for the
same key at once is refused rather than one silently winning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from warehouse.settings import AlpacaSettings


def test_keys_are_read_from_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("PKTESTKEY\n")
    (tmp_path / "secret").write_text("s3cr3t-value\n")
    monkeypatch.setenv("QTIS_ALPACA_KEY_ID_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("QTIS_ALPACA_SECRET_KEY_FILE", str(tmp_path / "secret"))
    settings = AlpacaSettings()
    assert settings.key_id is not None and settings.secret_key is not None
    assert settings.key_id.get_secret_value() == "PKTESTKEY"
    assert settings.secret_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTIS_ALPACA_KEY_ID", "PKENV")
    monkeypatch.setenv("QTIS_ALPACA_SECRET_KEY", "env-secret")
    settings = AlpacaSettings()
    assert settings.credentials() == ("PKENV", "env-secret")


def test_a_value_and_a_file_for_one_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret").write_text("from-file")
    monkeypatch.setenv("QTIS_ALPACA_SECRET_KEY", "from-env")
    monkeypatch.setenv("QTIS_ALPACA_SECRET_KEY_FILE", str(tmp_path / "secret"))
    with pytest.raises(ValidationError, match="QTIS_ALPACA_SECRET_KEY_FILE") as err:
        AlpacaSettings()
    assert "from-env" not in str(err.value) and "from-file" not in str(err.value)


def test_a_missing_secret_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTIS_ALPACA_KEY_ID_FILE", str(tmp_path / "nope"))
    with pytest.raises(ValidationError, match="nope"):
        AlpacaSettings()


def test_missing_keys_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEY_ID", "SECRET_KEY", "KEY_ID_FILE", "SECRET_KEY_FILE"):
        monkeypatch.delenv(f"QTIS_ALPACA_{name}", raising=False)
    with pytest.raises(Exception, match="QTIS_ALPACA_KEY_ID"):
        AlpacaSettings().credentials()
