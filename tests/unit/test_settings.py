"""Settings: defaults for development, refusals for production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stratus.settings import Settings, env_names


def test_development_defaults_need_no_configuration() -> None:
    settings = Settings()
    assert settings.env == "development" and settings.mongodb_uri is None


def test_production_refuses_the_default_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="STRATUS_JWT_SECRET"):
        Settings(env="production")


def test_production_accepts_real_secrets_or_their_arns() -> None:
    Settings(env="production", jwt_secret="x" * 40, url_signing_secret="y" * 40)  # type: ignore[arg-type]
    Settings(
        env="production",
        jwt_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt",
        url_signing_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:sign",
    )


def test_short_production_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", jwt_secret="short", url_signing_secret="y" * 40)  # type: ignore[arg-type]


def test_aws_runtime_names_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="MONGODB_URI, STRATUS_ARTIFACTS_BUCKET"):
        Settings(runtime="aws")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example.com:27017")
    monkeypatch.setenv("STRATUS_RATE_LIMIT_USER", "42")
    settings = Settings()
    assert settings.mongodb_uri == "mongodb://db.example.com:27017" and settings.rate_limit_user == 42


def test_secrets_are_resolved_from_arns() -> None:
    settings = Settings(jwt_secret_arn="arn:jwt", mongodb_uri_secret_arn="arn:uri")
    resolved = settings.with_secrets(lambda arn: {"arn:jwt": "j" * 40, "arn:uri": "mongodb://secret"}[arn])
    assert resolved.jwt_secret.get_secret_value() == "j" * 40 and resolved.mongodb_uri == "mongodb://secret"


@pytest.mark.parametrize(
    ("runtime", "backend", "message"),
    [
        ("local", "sagemaker", "STRATUS_JOB_BACKEND=sagemaker needs STRATUS_RUNTIME=aws"),
        ("local", "batch", "STRATUS_JOB_BACKEND=batch needs STRATUS_RUNTIME=aws"),
        ("aws", "local", "STRATUS_JOB_BACKEND=sagemaker or batch"),
    ],
)
def test_the_job_backend_must_fit_the_runtime(runtime: str, backend: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(runtime=runtime, job_backend=backend, mongodb_uri="mongodb://db", artifacts_bucket="b")  # type: ignore[arg-type]


def test_an_unknown_job_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="job_backend"):
        Settings(job_backend="kubernetes")  # type: ignore[arg-type]


def test_websocket_urls_follow_the_public_url_or_the_setting() -> None:
    assert (
        Settings(public_base_url="http://127.0.0.1:8000").follow_url("j1")
        == "ws://127.0.0.1:8000/ws?follow=j1"
    )
    assert (
        Settings(public_base_url="https://api.example.com").public_websocket_url()
        == "wss://api.example.com/ws"
    )
    aws = Settings(websocket_url="wss://abc.execute-api.us-east-1.amazonaws.com/prod/")
    assert aws.follow_url("j1") == "wss://abc.execute-api.us-east-1.amazonaws.com/prod?follow=j1"


def test_names_are_read_in_any_case_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("stratus_rate_limit_user", "7")
    monkeypatch.setenv("STRATUS_LOG_LEVEL", "DEBUG")
    settings = Settings(log_level="ERROR")
    assert settings.rate_limit_user == 7 and settings.log_level == "ERROR"


def test_an_alias_list_is_read_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert Settings().aws_region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert Settings().aws_region == "ap-south-1"


def test_list_and_dict_fields_take_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUS_CORS_ORIGINS", '["https://app.example.com"]')
    monkeypatch.setenv("STRATUS_PLAN_QUOTAS", '{"free": 5}')
    settings = Settings()
    assert settings.cors_origins == ["https://app.example.com"] and settings.plan_quotas == {"free": 5}


def test_bad_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUS_SAGEMAKER_INSTANCE_TYPES", "training=ml.c5.xlarge")
    with pytest.raises(ValueError, match="STRATUS_SAGEMAKER_INSTANCE_TYPES must be JSON"):
        Settings()


def test_a_bad_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUS_LOCAL_WORKERS", "many")
    with pytest.raises(ValidationError, match="local_workers"):
        Settings()


def test_every_field_has_its_variable() -> None:
    names = {field: env_names(field, info) for field, info in Settings.model_fields.items()}
    assert names["mongodb_uri"] == ("MONGODB_URI",)
    assert names["aws_region"] == ("AWS_REGION", "AWS_DEFAULT_REGION")
    assert names["rate_limit_user"] == ("STRATUS_RATE_LIMIT_USER",)
