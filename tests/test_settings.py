"""Settings come from the environment and a YAML file; errors name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.processors.settings import ProcessorSettings, require_webhook_secret
from batch_gateway.projections.settings import ProjectorSettings
from batch_gateway.settings import SettingsError, load_settings, to_environment


def test_defaults_follow_openai_limits() -> None:
    settings = load_settings(ApiServerSettings, {})
    assert settings.port == 8000
    assert settings.tenant_header == "X-MaaS-Username"
    assert settings.files.max_bytes == 200 * 1024 * 1024
    assert settings.files.max_batch_lines == 50_000
    assert settings.storage.kind == "filesystem"


def test_environment_sets_scalars_nested_structs_and_mappings() -> None:
    settings = load_settings(
        ApiServerSettings,
        {
            "BATCH_GATEWAY_PORT": "9000",
            "BATCH_GATEWAY_REDIS_URL": "redis://example:6379/1",
            "BATCH_GATEWAY_STORAGE_KIND": "s3",
            "BATCH_GATEWAY_STORAGE_S3_CREATE_BUCKET": "false",
            "BATCH_GATEWAY_FILES_MAX_BYTES": "1000",
            "BATCH_GATEWAY_API_KEYS": '{"sk-1": "alice"}',
            "UNRELATED": "ignored",
        },
    )
    assert settings.port == 9000
    assert settings.redis_url == "redis://example:6379/1"
    assert settings.storage.kind == "s3"
    assert settings.storage.s3_create_bucket is False
    assert settings.files.max_bytes == 1000
    assert settings.api_keys == {"sk-1": "alice"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_GATEWAY_PORT", "eighty"),
        ("BATCH_GATEWAY_PORT", "70000"),
        ("BATCH_GATEWAY_STORAGE_KIND", "ftp"),
        ("BATCH_GATEWAY_FILES_MAX_BYTES", "-1"),
        ("BATCH_GATEWAY_API_KEYS", "{not json"),
        ("BATCH_GATEWAY_POSTGRES_SCHEMA", "Robert'); DROP TABLE files;--"),
    ],
)
def test_a_bad_value_is_reported_by_its_variable_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(ApiServerSettings, {variable: value})


def test_yaml_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: 9100\nbatch_size: 50\nstorage:\n  fs_root: /data/files\n")
    settings = load_settings(
        ProjectorSettings,
        {"BATCH_GATEWAY_CONFIG": str(config), "BATCH_GATEWAY_PORT": "9200"},
    )
    assert settings.port == 9200
    assert settings.batch_size == 50
    assert settings.storage.fs_root == "/data/files"


def test_an_unknown_key_in_the_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("prot: 9100\n")
    with pytest.raises(SettingsError, match="BATCH_GATEWAY_PROT"):
        load_settings(ProjectorSettings, {"BATCH_GATEWAY_CONFIG": str(config)})


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BATCH_GATEWAY_CONFIG"):
        load_settings(ProjectorSettings, {"BATCH_GATEWAY_CONFIG": str(tmp_path / "missing")})


def test_to_environment_round_trips() -> None:
    original = load_settings(
        ApiServerSettings,
        {"BATCH_GATEWAY_API_KEYS": '{"k": "t"}', "BATCH_GATEWAY_STORAGE_KIND": "s3"},
    )
    assert load_settings(ApiServerSettings, to_environment(original)) == original


def test_webhook_urls_need_a_valid_signing_secret() -> None:
    settings = load_settings(
        ProcessorSettings,
        {
            "BATCH_GATEWAY_WEBHOOK_URLS": '["http://127.0.0.1:9/hook"]',
            "BATCH_GATEWAY_WEBHOOK_SECRET": "nope",
        },
    )
    with pytest.raises(SettingsError, match="BATCH_GATEWAY_WEBHOOK_SECRET"):
        require_webhook_secret(settings)
    require_webhook_secret(load_settings(ProcessorSettings, {}))  # no URLs, no secret needed
