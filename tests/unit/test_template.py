"""template.yaml: the linters accept it, and it keeps the properties the platform relies on.

cfn-lint and `sam validate --lint` run as subprocesses. The structural checks read the YAML with a loader
that maps CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) to their long forms, merge SAM Globals into
each function the way SAM does, and then assert: every environment variable a function gets is one that
Settings reads; every queue dead-letters; the bucket is private, encrypted and TLS-only; no IAM statement
grants a wildcard action; every handler and the layer exist on disk.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from stratus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Environment variables that Lambda reserves (setting them fails the deployment) or sets itself.
LAMBDA_RESERVED = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}
# Variables read by libraries rather than by Settings.
LIBRARY_ENV_PREFIXES = ("POWERTOOLS_",)
# Secret values never go into a function's configuration, only their Secrets Manager ARNs.
PLAINTEXT_SECRETS = {"MONGODB_URI", "STRATUS_JWT_SECRET", "STRATUS_URL_SIGNING_SECRET"}
# SAM policy templates allowed in a function's Policies: each is scoped to the one resource it names.
ALLOWED_POLICY_TEMPLATES = {
    "SQSSendMessagePolicy",
    "SQSPollerPolicy",
    "EventBridgePutEventsPolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
    "S3ReadPolicy",
}


# --- loading --------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into {"Ref": "X"}, `!GetAtt A.B` into {"Fn::GetAtt": ["A", "B"]} and
    any other `!Tag v` into {"Fn::Tag": v}."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(loaded, dict)
    return loaded


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge key by key (local wins), lists concatenate, scalars: local wins."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if any(k == "Ref" or k.startswith("Fn::") for k in (*global_value, *local_value)):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    return resources


@pytest.fixture(scope="module")
def functions(template: dict[str, Any], resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every AWS::Serverless::Function's Properties with Globals.Function merged in."""
    global_props = template.get("Globals", {}).get("Function", {})
    merged = {
        name: _merge_globals(copy.deepcopy(global_props), resource.get("Properties", {}))
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert "ApiFunction" in merged
    return merged


def _of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == type_}


def _ref_name(value: Any) -> str | None:
    """The logical id a `!Ref X` or `!GetAtt X.Attr` points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the linters ----------------------------------------------------------------------------------


def _tool(name: str, *candidates: Path) -> str | None:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_cfn_lint_passes() -> None:
    cfn_lint = _tool("cfn-lint", Path(sys.executable).parent / "cfn-lint", ROOT / ".venv/bin/cfn-lint")
    if cfn_lint is None:
        pytest.skip("cfn-lint is not installed (it is in the dev extras: pip install -e '.[dev]')")
    result = _run([cfn_lint, str(TEMPLATE)])
    assert result.returncode == 0, f"cfn-lint failed:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint_passes() -> None:
    sam = _tool("sam", ROOT / ".tools/bin/sam")
    if sam is None:
        pytest.skip("the AWS SAM CLI is not installed (`make tools` installs it into .tools/)")
    result = _run([sam, "validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE)])
    assert result.returncode == 0, f"sam validate --lint failed:\n{result.stdout}\n{result.stderr}"


# --- shape ----------------------------------------------------------------------------------------


def test_is_a_sam_template_with_the_documented_outputs(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    for output in ("ApiUrl", "ArtifactsBucketName", "JobsQueueUrl", "EventBusName", "CoreLayerArn"):
        assert output in template["Outputs"], output
    for parameter in ("Stage", "MongoDbUriSecretArn", "WorkerImageUri", "JobBackend"):
        assert parameter in template["Parameters"], parameter
    assert set(template["Parameters"]["JobBackend"]["AllowedValues"]) == {"sagemaker", "batch"}


def test_api_function_serves_every_route_through_the_http_api(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    api = functions["ApiFunction"]
    assert api["Handler"] == "app.handler"
    assert api["Runtime"] == "python3.12"
    assert api["Architectures"] == ["arm64"]
    assert [_ref_name(layer) for layer in api["Layers"]] == ["CoreLayer"]
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for event in api["Events"].values()
        if event["Type"] == "HttpApi"
    }
    assert {("/{proxy+}", "ANY"), ("/", "ANY")} <= routes
    for event in api["Events"].values():
        assert _ref_name(event["Properties"]["ApiId"]) == "HttpApi"
    http_api = resources["HttpApi"]
    assert http_api["Type"] == "AWS::Serverless::HttpApi"
    props = http_api["Properties"]
    assert props["AccessLogSettings"]["DestinationArn"]
    cors = props.get("CorsConfiguration") or props["DefinitionBody"]["x-amazon-apigateway-cors"]
    assert cors


def test_core_layer_builds_from_layers_core(resources: dict[str, Any]) -> None:
    layer = resources["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "stratus" / "__init__.py").is_file()


def test_core_layer_requirements_match_the_package_dependencies() -> None:
    """The layer ships what `pip install stratus` would (layers/core/requirements.txt mirrors pyproject)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {re.sub(r"\s+", "", d) for d in pyproject["project"]["dependencies"]}
    lines = (ROOT / "layers/core/requirements.txt").read_text().splitlines()
    layer = {re.sub(r"\s+", "", line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    assert layer == declared, f"only in the layer: {layer - declared}; only in pyproject: {declared - layer}"


def test_every_handler_exists_on_disk(functions: dict[str, dict[str, Any]]) -> None:
    for name, props in functions.items():
        module, _, attribute = props["Handler"].rpartition(".")
        source = ROOT / props["CodeUri"] / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} is missing"
        tree = ast.parse(source.read_text())
        defined = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        } | {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert attribute in defined, f"{name}: {source} defines no top-level {attribute!r}"


# --- environment ----------------------------------------------------------------------------------


def _settings_env_names() -> set[str]:
    """The environment variable names Settings reads (upper-cased; pydantic-settings ignores case)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


def test_every_function_env_var_is_read_by_settings(functions: dict[str, dict[str, Any]]) -> None:
    known = _settings_env_names()
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        assert variables["STRATUS_RUNTIME"] == "aws"
        for key in variables:
            assert key not in LAMBDA_RESERVED, f"{name}: {key} is reserved by Lambda"
            if key.startswith(LIBRARY_ENV_PREFIXES):
                continue
            assert key.upper() in known, f"{name}: {key} is not a Settings field (typo?)"


def test_functions_get_secret_arns_never_secret_values(functions: dict[str, dict[str, Any]]) -> None:
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        assert not PLAINTEXT_SECRETS & set(variables), f"{name} puts a secret value in its environment"
        assert "resolve:secretsmanager" not in str(variables), (
            f"{name} resolves a secret into its environment"
        )
        for key in (
            "STRATUS_MONGODB_URI_SECRET_ARN",
            "STRATUS_JWT_SECRET_ARN",
            "STRATUS_URL_SIGNING_SECRET_ARN",
        ):
            assert key in variables, f"{name} lacks {key}"


def test_runtime_aws_settings_requirements_are_met(functions: dict[str, dict[str, Any]]) -> None:
    """Settings(runtime="aws") refuses to start without a database and a bucket; composition needs the queue."""
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        assert "MONGODB_URI" in variables or "STRATUS_MONGODB_URI_SECRET_ARN" in variables, name
        assert _ref_name(variables["STRATUS_ARTIFACTS_BUCKET"]) == "ArtifactsBucket", name
        assert _ref_name(variables["STRATUS_JOBS_QUEUE_URL"]) == "JobsQueue", name
        assert _ref_name(variables["STRATUS_EVENT_BUS_NAME"]) == "EventBus", name


# --- messaging ------------------------------------------------------------------------------------


def test_every_queue_dead_letters_after_five_receives(resources: dict[str, Any]) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    dead_letter_queues = {
        _ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    assert "JobsQueue" in queues
    for name, queue in queues.items():
        if name in dead_letter_queues:
            continue
        redrive = queue["Properties"].get("RedrivePolicy")
        assert redrive, f"{name} has no dead-letter queue"
        assert redrive["maxReceiveCount"] == 5, name
        target = _ref_name(redrive["deadLetterTargetArn"])
        assert target in queues, f"{name} dead-letters to {target}, which is not a queue in this stack"
        # The DLQ must keep a message longer than the source queue did (SQS keeps the original timestamp).
        source_retention = queue["Properties"].get("MessageRetentionPeriod", 345600)
        assert queues[target]["Properties"]["MessageRetentionPeriod"] > source_retention, name


def test_every_dead_letter_queue_has_a_depth_alarm(resources: dict[str, Any]) -> None:
    dead_letter_queues = {
        _ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in _of_type(resources, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    assert dead_letter_queues
    alarmed = {
        _ref_name(dimension["Value"])
        for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
        for dimension in alarm["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }
    assert dead_letter_queues <= alarmed


def test_sqs_consumers_report_partial_failures_and_fit_the_visibility_timeout(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    for name, props in functions.items():
        for event in props.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = resources[_ref_name(event["Properties"]["Queue"]) or ""]
            visibility = queue["Properties"]["VisibilityTimeout"]
            # AWS: a queue's visibility timeout should be at least 6x its consumer's timeout.
            assert visibility >= 6 * props["Timeout"], f"{name}: timeout {props['Timeout']} vs {visibility}"
            assert "ReportBatchItemFailures" in event["Properties"].get("FunctionResponseTypes", []), name


def test_event_bus_exists(resources: dict[str, Any]) -> None:
    assert resources["EventBus"]["Type"] == "AWS::Events::EventBus"


# --- storage --------------------------------------------------------------------------------------


def test_artifacts_bucket_is_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    bucket = resources["ArtifactsBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    props = bucket["Properties"]
    block = props["PublicAccessBlockConfiguration"]
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block[setting] is True, setting
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)
    cors = props["CorsConfiguration"]["CorsRules"]
    assert any("PUT" in rule["AllowedMethods"] for rule in cors), "presigned PUT uploads need CORS"

    policies = [
        p
        for p in _of_type(resources, "AWS::S3::BucketPolicy").values()
        if _ref_name(p["Properties"]["Bucket"]) == "ArtifactsBucket"
    ]
    assert policies, "ArtifactsBucket has no bucket policy"
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in statements
    ), "ArtifactsBucket does not deny plain-HTTP access"


# --- IAM ------------------------------------------------------------------------------------------

_WILDCARD_ACTION = re.compile(r"^(\*|[a-z0-9-]+:\*)$", re.IGNORECASE)


def _iam_statements(resources: dict[str, Any], functions: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"}:
            found += [(name, s) for s in _as_list(props["PolicyDocument"]["Statement"])]
        elif resource["Type"] == "AWS::IAM::Role":
            found += [
                (name, s)
                for policy in props.get("Policies", [])
                for s in _as_list(policy["PolicyDocument"]["Statement"])
            ]
    for name, props in functions.items():
        for policy in _as_list(props.get("Policies", [])):
            if isinstance(policy, dict) and "Statement" in policy:
                found += [(name, s) for s in _as_list(policy["Statement"])]
    return found


def _conditional_branches(statement: Any) -> list[Any]:
    """A statement, or both branches of an `!If` that chooses one (AWS::NoValue dropped)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        _, yes, no = statement["Fn::If"]
        return [s for s in (yes, no) if s != {"Ref": "AWS::NoValue"}]
    return [statement]


def test_no_iam_statement_grants_wildcard_actions(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    statements = _iam_statements(resources, functions)
    assert statements
    for owner, raw in statements:
        for statement in _conditional_branches(raw):
            assert "NotAction" not in statement, f"{owner}: NotAction is as broad as it gets"
            if statement["Effect"] != "Allow":
                continue
            for action in _as_list(statement["Action"]):
                assert not _WILDCARD_ACTION.match(action), f"{owner}: {statement.get('Sid')} allows {action}"
            assert "*" not in _as_list(statement["Resource"]), (
                f"{owner}: {statement.get('Sid')} on Resource '*'"
            )


def test_function_policies_are_scoped(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """Policies are inline statements, SAM policy templates scoped to one resource, or this stack's policies."""
    assert "Role" not in functions["ApiFunction"], "the API function must use its own SAM-generated role"
    for name, props in functions.items():
        for policy in _as_list(props.get("Policies", [])):
            if isinstance(policy, dict) and "Statement" in policy:
                continue
            if isinstance(policy, dict) and len(policy) == 1 and next(iter(policy)) not in {"Ref", "Fn::If"}:
                template_name = next(iter(policy))
                assert template_name in ALLOWED_POLICY_TEMPLATES, f"{name}: policy template {template_name}"
                continue
            target = _ref_name(policy)
            assert target is not None, (
                f"{name}: unexpected policy {policy!r} (AWS managed policies are too broad)"
            )
            assert resources[target]["Type"] == "AWS::IAM::ManagedPolicy", f"{name}: {target}"


def test_secrets_are_read_only_by_arn(resources: dict[str, Any]) -> None:
    policy = resources["SecretsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    read = next(s for s in policy if isinstance(s, dict) and s.get("Sid") == "ReadStratusSecrets")
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert len(read["Resource"]) == 3
    for secret in ("JwtSecret", "UrlSigningSecret"):
        generate = resources[secret]["Properties"]["GenerateSecretString"]
        assert generate["PasswordLength"] >= 32
