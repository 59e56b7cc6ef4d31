from pathlib import Path

import pytest

from lgo.core.settings import SettingsError, is_loopback, load_settings


def test_defaults_are_loopback_and_sqlite_in_state_dir(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    assert settings.api.host == "127.0.0.1"
    assert settings.database_url == f"sqlite:///{tmp_path / 'lgo.sqlite3'}"


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGO_API__PORT", "9123")
    monkeypatch.setenv("LGO_PHARMACY__NAME", "Pharmacie du Test")
    settings = load_settings()
    assert settings.api.port == 9123
    assert settings.pharmacy.name == "Pharmacie du Test"


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lgo.toml"
    config.write_text('[api]\nport = 8801\n[pharmacy]\nname = "Officine TOML"\n', encoding="utf-8")
    monkeypatch.setenv("LGO_API__PORT", "8802")
    settings = load_settings(config)
    assert settings.pharmacy.name == "Officine TOML"
    assert settings.api.port == 8802


def test_non_loopback_address_is_refused_with_a_readable_message() -> None:
    with pytest.raises(SettingsError, match="boucle locale"):
        load_settings(api={"host": "0.0.0.0"})


def test_non_loopback_address_needs_the_explicit_setting() -> None:
    settings = load_settings(api={"host": "192.0.2.10", "allow_non_loopback": True})
    assert settings.api.host == "192.0.2.10"


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"api": {"port": 70000}}, "api.port"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"pharmacy": {"finess": "12"}}, "pharmacy.finess"),
        ({"unknown_section": {}}, "unknown_section"),
    ],
)
def test_invalid_values_name_the_field(overrides: dict[str, object], where: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    assert where in str(caught.value)


def test_invalid_values_are_described_in_french() -> None:
    """The technician reads the configuration's problems in French, as the counter reads the API's."""
    with pytest.raises(SettingsError) as caught:
        load_settings(database={"pool_size": 0}, unknown_section={})
    message = str(caught.value)
    assert "database.pool_size: doit être supérieur ou égal à 1" in message
    assert "unknown_section: champ inconnu" in message
    assert "Input should" not in message


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="introuvable"):
        load_settings(tmp_path / "absent.toml")


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[api\nport=", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"illisible|invalide"):
        load_settings(config)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.org", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
