"""template.yaml: the linters accept it, and it keeps the properties the platform relies on.

cfn-lint and `sam validate --lint` run as subprocesses. The structural checks read the YAML with a loader
that maps CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) to their long forms, merge SAM Globals into
each function the way SAM does, and then assert: every environment variable a function gets is one that
Settings reads; every queue dead-letters, every EventBridge rule target and asynchronous event consumer
dead-letters, and every dead-letter queue has an alarm; the bucket is private, encrypted and TLS-only; no IAM
statement grants a wildcard action, and Resource "*" only for the few actions IAM offers no resource for;
SageMaker jobs get their own role, passed only to SageMaker; each HTTP capability group has its own function,
and API Gateway's route selection sends every path of each group's app to that group's function and to no
other; webhook deliveries have their own queue, dead-letter queue and consumer, and whoever sends them may;
the WebSocket API routes $connect, $disconnect and $default to its function; the job-events rules match the
job-events service's pattern; every handler and the layer exist on disk; the optional NLP inference endpoint
is asynchronous, scales to zero, runs the worker image with a role of its own, and is what the models
function invokes when it is deployed.
"""

from __future__ import annotations

import ast
import copy
import json
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
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from stratus import capabilities
from stratus.api.app import create_app
from stratus.composition import Container
from stratus.jobs.events import EVENT_PATTERN
from stratus.settings import Settings, env_names

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
# Actions IAM supports no resource-level permissions for (the Service Authorization Reference lists no
# resource type): the only ones a statement may grant on Resource "*", each justified in template.yaml.
RESOURCE_STAR_ACTIONS = {
    "batch:DescribeJobs",  # job status for the API, the job-events function and the sweeper
    "ecr:GetAuthorizationToken",  # SageMaker pulling the private worker image (pulls are repo-scoped)
    "cloudwatch:PutMetricData",  # inference endpoint instance metrics (held to one namespace, below)
}
# Resource "*" actions that must still be narrowed by a condition key: action -> the key.
RESOURCE_STAR_CONDITIONS = {"cloudwatch:PutMetricData": "cloudwatch:namespace"}
# The HTTP API's functions: one per capability group (functions/<group>/app.py), by logical id.
HTTP_FUNCTIONS = {group: f"{group.capitalize()}Function" for group in capabilities.GROUPS}
# Every function the platform deploys, by logical id.
EXPECTED_FUNCTIONS = {
    *HTTP_FUNCTIONS.values(),
    "DispatcherFunction",
    "WebhooksFunction",
    "JobEventsFunction",
    "SweeperFunction",
    "WebSocketFunction",
}
# SAM event types that become an EventBridge rule targeting the function.
RULE_EVENT_TYPES = {"EventBridgeRule", "Schedule", "CloudWatchEvent"}


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
    assert set(HTTP_FUNCTIONS.values()) <= set(merged)
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
    for output in (
        "ApiUrl",
        "ArtifactsBucketName",
        "JobsQueueUrl",
        "JobsDeadLetterQueueUrl",
        "JobEventsDeadLetterQueueUrl",
        "EventBusName",
        "CoreLayerArn",
        "WebSocketUrl",
        "WebhooksQueueUrl",
        "WebhooksDeadLetterQueueUrl",
        *(f"{name}Name" for name in sorted(EXPECTED_FUNCTIONS)),
    ):
        assert output in template["Outputs"], output
    for parameter in (
        "Stage",
        "MongoDbUriSecretArn",
        "WorkerImageUri",
        "JobBackend",
        "SageMakerGpuInstanceType",
        "SageMakerCpuInstanceType",
        "BatchJobQueueArn",
        "BatchGpuJobQueueArn",
        "BatchJobDefinitionArn",
    ):
        assert parameter in template["Parameters"], parameter
    # Settings(runtime="aws") refuses the local backend.
    assert set(template["Parameters"]["JobBackend"]["AllowedValues"]) == {"sagemaker", "batch"}
    for parameter in ("BatchJobQueueArn", "BatchGpuJobQueueArn", "BatchJobDefinitionArn"):
        assert template["Parameters"][parameter]["Default"] == "", f"{parameter} must be optional"
    assert template["Outputs"]["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://")


def test_each_capability_group_has_its_own_http_function(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """functions/<group>/app.py serves exactly its group (`http_lambda("<group>")`), inside API Gateway's
    30 s integration limit, with the request-body cap Lambda's 6 MB payload limit allows."""
    assert set(HTTP_FUNCTIONS) == {"platform", "data", "jobs", "models", "ai"}
    for group, name in HTTP_FUNCTIONS.items():
        props = functions[name]
        assert props["CodeUri"] == f"functions/{group}/", name
        assert props["Handler"] == "app.handler", name
        assert props["Architectures"] == ["arm64"], name
        assert props["Timeout"] == 29, name
        # Base64 makes a body 4/3 larger; Lambda refuses synchronous payloads over 6 MB.
        max_upload = int(props["Environment"]["Variables"]["STRATUS_MAX_UPLOAD_BYTES"])
        assert max_upload * 4 / 3 < 6 * 1024 * 1024, name
        tree = ast.parse((ROOT / "functions" / group / "app.py").read_text())
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "http_lambda"
        ]
        assert [[ast.literal_eval(arg) for arg in call.args] for call in calls] == [[group]], name
        events = props["Events"].values()
        assert events and all(e["Type"] == "HttpApi" for e in events), name
        assert all(_ref_name(e["Properties"]["ApiId"]) == "HttpApi" for e in events), name
    for name, props in functions.items():
        if name not in HTTP_FUNCTIONS.values():
            assert not any(e["Type"] == "HttpApi" for e in props.get("Events", {}).values()), name
    assert not (ROOT / "functions/api").exists(), (
        "the single API function was replaced by the group functions"
    )
    http_api = resources["HttpApi"]
    assert http_api["Type"] == "AWS::Serverless::HttpApi"
    props = http_api["Properties"]
    assert props["AccessLogSettings"]["DestinationArn"]
    cors = props.get("CorsConfiguration") or props["DefinitionBody"]["x-amazon-apigateway-cors"]
    assert cors


def test_every_function_logs_to_its_own_log_group(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    groups = {name: _ref_name(props["LoggingConfig"]["LogGroup"]) for name, props in functions.items()}
    assert len(set(groups.values())) == len(groups), groups
    for name, group in groups.items():
        log_group = resources[group or ""]
        assert log_group["Type"] == "AWS::Logs::LogGroup", name
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


# --- HTTP routes ----------------------------------------------------------------------------------


def _route_keys(functions: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every HTTP API route key ("ANY /path" or "$default") -> the function it invokes."""
    keys: dict[str, str] = {}
    for name, props in functions.items():
        for event_name, event in props.get("Events", {}).items():
            if event["Type"] != "HttpApi":
                continue
            properties = event.get("Properties", {})
            path, method = properties.get("Path"), properties.get("Method")
            # SAM makes an HttpApi event without Path and Method the $default route.
            if not path and not method:
                key = "$default"
            else:
                # The app answers 405 for a wrong method; per-method keys would only multiply routes.
                assert str(method).upper() == "ANY", f"{name}.{event_name}: {method} {path}"
                key = f"ANY {path}"
            assert key not in keys, f"{key} is routed to both {keys[key]} and {name}"
            keys[key] = name
    return keys


def _specificity(route_key: str, path: str) -> tuple[int, int, int] | None:
    """How specifically `route_key` matches a request for `path` (None: it does not), ordered the way HTTP
    APIs choose: a route without path variables that matches exactly, then routes with path variables, then
    greedy ones ({proxy+}: one or more segments), each preferring more literal segments; $default last."""
    if route_key == "$default":
        return (0, 0, 0)
    route = [s for s in route_key.split(" ", 1)[1].split("/") if s]
    segments = [s for s in path.split("/") if s]
    greedy = bool(route) and route[-1].endswith("+}")
    fixed = route[:-1] if greedy else route
    if len(segments) <= len(fixed) if greedy else len(segments) != len(fixed):
        return None
    for expected, actual in zip(fixed, segments, strict=False):
        if not expected.startswith("{") and expected != actual:
            return None
    literals = sum(not s.startswith("{") for s in fixed)
    tier = 1 if greedy else 3 if literals == len(fixed) else 2
    return (tier, literals, len(fixed))


def _selected(keys: dict[str, str], path: str) -> dict[str, str]:
    """The route keys API Gateway ranks first for `path` -> their functions (one entry unless ambiguous)."""
    ranked = {key: rank for key in keys if (rank := _specificity(key, path)) is not None}
    best = max(ranked.values())
    return {key: keys[key] for key, rank in ranked.items() if rank == best}


def _request_path(route_path: str) -> str:
    """A concrete request path for a Starlette route path ({name:path} spans segments)."""
    return re.sub(r"\{[^}]+\}", "x1", re.sub(r"\{[^}:]+:path\}", "a/b", route_path))


def test_route_selection_model_matches_api_gateway() -> None:
    """The model above on API Gateway's documented examples (HTTP API route selection)."""
    keys = {
        "ANY /pets/dog/1": "exact",
        "ANY /pets/dog/{id}": "variable",
        "ANY /pets/{proxy+}": "greedy",
        "ANY /{proxy+}": "root greedy",
        "$default": "default",
    }
    assert _selected(keys, "/pets/dog/1") == {"ANY /pets/dog/1": "exact"}
    assert _selected(keys, "/pets/dog/2") == {"ANY /pets/dog/{id}": "variable"}
    assert _selected(keys, "/pets/cat/1") == {"ANY /pets/{proxy+}": "greedy"}
    assert _selected(keys, "/birds") == {"ANY /{proxy+}": "root greedy"}
    # {proxy+} needs at least one segment; nothing else matches "/".
    assert _selected(keys, "/") == {"$default": "default"}
    assert _selected({"ANY /pets": "a", "ANY /pets/{proxy+}": "b"}, "/pets") == {"ANY /pets": "a"}


def _serves(app: FastAPI, path: str) -> bool:
    """Whether one of the app's routes matches a request for `path` (any method)."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "path_params": {}, "headers": []}
    return any(route.matches(scope)[0] != Match.NONE for route in app.routes)


async def test_every_route_of_each_group_reaches_its_own_function(
    container: Container, functions: dict[str, dict[str, Any]]
) -> None:
    """Each group's app, built as its Lambda builds it: a request for every one of its capability routes
    (which the app serves) is sent by API Gateway to that group's function and to no other, and its
    document and docs (served by every group's app) go to the platform function. A new capability route
    outside the routed prefixes, or one that a more specific key of another group would capture, fails
    here instead of silently hitting the wrong Lambda. Every route key is used by a route of its own
    function's app, and every capability belongs to a group that has a function."""
    assert {c.group for c in capabilities.CAPABILITIES} <= set(HTTP_FUNCTIONS)
    keys = _route_keys(functions)
    assert set(keys.values()) == set(HTTP_FUNCTIONS.values())
    assert keys["$default"] == "PlatformFunction", "unknown paths must get the platform app's 404"
    used: set[str] = {"$default"}
    for group, function in HTTP_FUNCTIONS.items():
        app = create_app(container, groups=[group])
        own = {
            route.path
            for router in capabilities.routes_of(capabilities.in_groups([group]))
            for route in router.routes
            if isinstance(route, BaseRoute | APIRoute) and hasattr(route, "path")
        }
        assert own, group
        documentation = {app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url}
        for path in sorted(own) + sorted(p for p in documentation if p):
            request = _request_path(path)
            assert _serves(app, request), f"the {group} app does not serve {request} ({path})"
            expected = function if path in own else "PlatformFunction"
            selected = _selected(keys, request)
            assert set(selected.values()) == {expected}, (
                f"{group} route {path}: a request for {request} selects {selected}, not {expected}"
            )
            if expected == function:
                used |= set(selected)
    assert set(keys) - used == set(), (
        f"route keys that no route of their function's app uses: {set(keys) - used}"
    )
    for path in ("/", "/openapi.json", "/openapi.yaml", "/docs", "/redoc", "/health", "/metrics", "/ready"):
        assert set(_selected(keys, path).values()) == {"PlatformFunction"}, path
    for path in ("/nope", "/api", "/api/nope", "/api/datasetsx"):
        assert _selected(keys, path) == {"$default": "PlatformFunction"}, path


def test_core_layer_builds_from_layers_core(resources: dict[str, Any]) -> None:
    layer = resources["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"  # layers/core/Makefile ships bytecode
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "stratus" / "__init__.py").is_file()
    makefile = (content / "Makefile").read_text()
    assert "build-CoreLayer:" in makefile and "--invalidation-mode unchecked-hash" in makefile
    assert "--platform $(PLATFORM)" in makefile and "PLATFORM ?= manylinux2014_aarch64" in makefile


def test_core_layer_requirements_match_the_package_dependencies() -> None:
    """The layer ships what `pip install stratus` would (layers/core/requirements.txt mirrors pyproject)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {re.sub(r"\s+", "", d) for d in pyproject["project"]["dependencies"]}
    lines = (ROOT / "layers/core/requirements.txt").read_text().splitlines()
    layer = {re.sub(r"\s+", "", line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    assert layer == declared, f"only in the layer: {layer - declared}; only in pyproject: {declared - layer}"


def test_every_handler_exists_on_disk(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == EXPECTED_FUNCTIONS
    for name, props in functions.items():
        assert props["Runtime"] == "python3.12", name
        assert [_ref_name(layer) for layer in props["Layers"]] == ["CoreLayer"], name
        module, _, attribute = props["Handler"].rpartition(".")
        source = ROOT / props["CodeUri"] / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} is missing"
        tree = ast.parse(source.read_text())
        # `handler = ...`, `app, handler = http_lambda(...)` or `def handler(...)`.
        defined = {
            name.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            for name in (target.elts if isinstance(target, ast.Tuple) else [target])
            if isinstance(name, ast.Name)
        } | {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert attribute in defined, f"{name}: {source} defines no top-level {attribute!r}"


# --- environment ----------------------------------------------------------------------------------


def _settings_env_names() -> set[str]:
    """The environment variable names Settings reads (upper-cased: it ignores case)."""
    return {
        name for field_name, field in Settings.model_fields.items() for name in env_names(field_name, field)
    }


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
    """Settings(runtime="aws") refuses to start without a database and a bucket; composition needs the queue,
    the job backend's settings and the WebSocket management endpoint (every function may push)."""
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        assert "MONGODB_URI" in variables or "STRATUS_MONGODB_URI_SECRET_ARN" in variables, name
        assert _ref_name(variables["STRATUS_ARTIFACTS_BUCKET"]) == "ArtifactsBucket", name
        assert _ref_name(variables["STRATUS_JOBS_QUEUE_URL"]) == "JobsQueue", name
        # Webhook deliveries never share JobsQueue in AWS.
        assert _ref_name(variables["STRATUS_WEBHOOKS_QUEUE_URL"]) == "WebhooksQueue", name
        assert variables["STRATUS_JOB_BACKEND"] == {"Ref": "JobBackend"}, name
        assert _ref_name(variables["STRATUS_EVENT_BUS_NAME"]) == "EventBus", name
        assert _ref_name(variables["STRATUS_SAGEMAKER_ROLE_ARN"]) == "SageMakerExecutionRole", name
        for key, parameter in (
            ("STRATUS_BATCH_JOB_QUEUE", "BatchJobQueueArn"),
            ("STRATUS_BATCH_GPU_JOB_QUEUE", "BatchGpuJobQueueArn"),
            ("STRATUS_BATCH_JOB_DEFINITION", "BatchJobDefinitionArn"),
            ("STRATUS_SAGEMAKER_INSTANCE_TYPES", "SageMakerInstanceTypes"),
        ):
            # Only when the parameter is set: an empty value would not read as "unset" in Settings.
            _, when_set, otherwise = variables[key]["Fn::If"]
            assert _ref_name(when_set) == parameter and otherwise == {"Ref": "AWS::NoValue"}, (name, key)
        endpoint = variables["STRATUS_WEBSOCKET_ENDPOINT"]["Fn::Sub"]
        # The Management API endpoint (https, with the stage path), not the wss:// client URL.
        assert endpoint.startswith("https://${WebSocketApi}.execute-api."), (name, endpoint)
        assert endpoint.endswith("/${Stage}"), (name, endpoint)


def test_functions_name_the_websocket_client_url(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """STRATUS_WEBSOCKET_URL is the wss:// URL clients open (the WebSocketUrl output): the same API and stage
    as the Management API endpoint the functions push through, and what `?follow=` URLs are built on."""
    expected = "wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        url = variables["STRATUS_WEBSOCKET_URL"]["Fn::Sub"]
        assert url == expected, name
        endpoint = variables["STRATUS_WEBSOCKET_ENDPOINT"]["Fn::Sub"]
        assert url.removeprefix("wss://") == endpoint.removeprefix("https://"), name
    # The output names the stage resource, whose name is the Stage parameter.
    output = template["Outputs"]["WebSocketUrl"]["Value"]["Fn::Sub"]
    assert output.replace("${WebSocketStage}", "${Stage}") == expected
    deployed = _substitute(expected, {"WebSocketApi": "abc123", "AWS::Region": "us-east-1"})
    deployed = _substitute(deployed, {"AWS::URLSuffix": "amazonaws.com", "Stage": "dev"})
    settings = Settings(websocket_url=deployed)
    assert settings.follow_url("j1") == "wss://abc123.execute-api.us-east-1.amazonaws.com/dev?follow=j1"


def test_gpu_and_cpu_job_placement_parameters(
    template: dict[str, Any],
    resources: dict[str, Any],
    functions: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SageMaker: a GPU and a CPU instance type (defaults as in Settings) plus optional per-kind overrides;
    Batch: an optional GPU job queue, which the dispatcher may submit to only when it is given."""
    parameters = template["Parameters"]
    assert "SageMakerInstanceType" not in parameters
    fields = Settings.model_fields
    for parameter, variable, field, default in (
        (
            "SageMakerGpuInstanceType",
            "STRATUS_SAGEMAKER_GPU_INSTANCE_TYPE",
            "sagemaker_gpu_instance_type",
            "ml.g5.xlarge",
        ),
        (
            "SageMakerCpuInstanceType",
            "STRATUS_SAGEMAKER_CPU_INSTANCE_TYPE",
            "sagemaker_cpu_instance_type",
            "ml.m5.large",
        ),
    ):
        assert parameters[parameter]["Default"] == default == fields[field].default, parameter
        assert re.fullmatch(parameters[parameter]["AllowedPattern"], default), parameter
        for name, props in functions.items():
            assert props["Environment"]["Variables"][variable] == {"Ref": parameter}, (name, variable)
    overrides = parameters["SageMakerInstanceTypes"]
    # Fine-tunes (the kinds that need the most GPU memory) get the larger GPU by default.
    assert json.loads(overrides["Default"]) == {
        "finetune": "ml.g5.2xlarge",
        "finetune_merge": "ml.g5.xlarge",
        "image_generation": "ml.g5.xlarge",
        "video_generation": "ml.g5.2xlarge",
    }
    example = '{"training":"ml.g5.2xlarge","download":"ml.c5.large"}'
    assert re.fullmatch(overrides["AllowedPattern"], example)
    assert not re.fullmatch(overrides["AllowedPattern"], "ml.g5.2xlarge")
    # What the parameter carries is what Settings reads from STRATUS_SAGEMAKER_INSTANCE_TYPES.
    monkeypatch.setenv("STRATUS_SAGEMAKER_INSTANCE_TYPES", example)
    assert Settings().sagemaker_instance_types == {"training": "ml.g5.2xlarge", "download": "ml.c5.large"}
    gpu_queue = parameters["BatchGpuJobQueueArn"]
    assert gpu_queue["AllowedPattern"] == parameters["BatchJobQueueArn"]["AllowedPattern"]
    grouped = {
        name
        for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        for name in group["Parameters"]
    }
    assert {
        "SageMakerGpuInstanceType",
        "SageMakerCpuInstanceType",
        "SageMakerInstanceTypes",
        "BatchGpuJobQueueArn",
    } <= grouped

    submit = next(
        s
        for s in _function_statements(resources, functions["DispatcherFunction"])
        if "batch:SubmitJob" in _as_list(s["Action"])
    )
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/"
    for gpu, expected in (("", [f"{arn}cpu"]), (f"{arn}gpu", [f"{arn}cpu", f"{arn}gpu"])):
        values = _inference_parameters(
            template,
            BatchJobQueueArn=f"{arn}cpu",
            BatchGpuJobQueueArn=gpu,
            BatchJobDefinitionArn="arn:aws:batch:us-east-1:123456789012:job-definition/worker",
        )
        queues = [
            chosen
            for resource in submit["Resource"]
            if (chosen := _choose(template, resource, values)) is not None
            and isinstance(chosen, dict)
            and "Ref" in chosen
            and "Queue" in chosen["Ref"]
        ]
        assert [values[q["Ref"]] for q in queues] == expected, gpu


# --- messaging ------------------------------------------------------------------------------------


def _rule_targets(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(rule logical id after the SAM transform, event type, target properties) for every EventBridge rule
    target: SAM function events (SAM names the rule <Function><Event>) and plain AWS::Events::Rule targets."""
    found = []
    for name, props in functions.items():
        for event_name, event in props.get("Events", {}).items():
            if event["Type"] in RULE_EVENT_TYPES:
                found.append((f"{name}{event_name}", event["Type"], event.get("Properties", {})))
    for name, rule in _of_type(resources, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            found.append((name, "AWS::Events::Rule", target))
    return found


def _on_failure_queues(functions: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Function -> the queue its asynchronous invocations fail over to (EventInvokeConfig), if any."""
    found: dict[str, str | None] = {}
    for name, props in functions.items():
        on_failure = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
        found[name] = _ref_name(on_failure["Destination"]) if on_failure else None
    return found


def _dead_letter_queues(resources: dict[str, Any], functions: dict[str, dict[str, Any]]) -> set[str]:
    """Queues that receive what something else could not process: SQS redrive targets, EventBridge rule
    target DLQs and Lambda on-failure destinations."""
    queues = _of_type(resources, "AWS::SQS::Queue")
    found = {
        _ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    found |= {
        _ref_name(target["DeadLetterConfig"]["Arn"])
        for _, _, target in _rule_targets(resources, functions)
        if "Arn" in target.get("DeadLetterConfig", {})
    }
    found |= {queue for queue in _on_failure_queues(functions).values() if queue}
    return {name for name in found if name}


def _alarmed_queues(resources: dict[str, Any]) -> set[str | None]:
    return {
        _ref_name(dimension["Value"])
        for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
        and alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"].get("AlarmActions")
        for dimension in alarm["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }


def test_every_queue_dead_letters_after_five_receives(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    dead_letter_queues = _dead_letter_queues(resources, functions)
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
    for name in dead_letter_queues:
        # Time to inspect and redrive: the maximum, 14 days.
        assert queues[name]["Properties"]["MessageRetentionPeriod"] == 1209600, name


def test_every_dead_letter_queue_has_a_depth_alarm(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    dead_letter_queues = _dead_letter_queues(resources, functions)
    assert {
        "JobsDeadLetterQueue",
        "WebhooksDeadLetterQueue",
        "JobEventsDeadLetterQueue",
    } <= dead_letter_queues
    missing = dead_letter_queues - _alarmed_queues(resources)
    assert not missing, f"dead-letter queues without a depth alarm: {missing}"


def test_every_eventbridge_rule_target_retries_and_dead_letters(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """A target EventBridge cannot invoke is retried, then parked in an alarmed queue that lets exactly the
    stack's rules (events.amazonaws.com, aws:SourceArn) send to it."""
    targets = _rule_targets(resources, functions)
    assert {rule for rule, _, _ in targets} >= {
        "JobEventsFunctionWorkerEvents",
        "JobEventsFunctionSageMakerStateChange",
        "JobEventsFunctionBatchStateChange",
        "SweeperFunctionEveryFiveMinutes",
    }
    queues = _of_type(resources, "AWS::SQS::Queue")
    alarmed = _alarmed_queues(resources)
    for rule, _, target in targets:
        retry = target.get("RetryPolicy")
        assert retry and retry["MaximumRetryAttempts"] >= 1, f"{rule} has no RetryPolicy"
        assert retry["MaximumEventAgeInSeconds"] >= 60, rule
        dead_letter = target.get("DeadLetterConfig", {})
        queue = _ref_name(dead_letter.get("Arn"))
        assert queue in queues, f"{rule} has no dead-letter queue in this stack"
        assert queue in alarmed, f"{rule}: {queue} has no depth alarm"
        allowed: set[str | None] = set()
        for policy in _of_type(resources, "AWS::SQS::QueuePolicy").values():
            if queue not in {_ref_name(q) for q in policy["Properties"]["Queues"]}:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow" and statement.get("Principal") == {
                    "Service": "events.amazonaws.com"
                }:
                    assert statement["Action"] == "sqs:SendMessage"
                    source_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
                    allowed |= {_ref_name(arn) for arn in _as_list(source_arns)}
        assert rule in allowed, f"{queue}'s policy does not let {rule} send its dead letters"


def test_event_consumers_dead_letter_their_failed_invocations(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """Lambda retries a failed asynchronous invocation twice and then drops it: a function consuming
    EventBridge events (other than a schedule, which simply runs again) must fail over to an alarmed queue."""
    on_failure = _on_failure_queues(functions)
    alarmed = _alarmed_queues(resources)
    for name, props in functions.items():
        if not any(
            e["Type"] in {"EventBridgeRule", "CloudWatchEvent"} for e in props.get("Events", {}).values()
        ):
            continue
        assert on_failure[name], f"{name} drops events whose handling failed (no EventInvokeConfig OnFailure)"
        assert on_failure[name] in alarmed, f"{name}: {on_failure[name]} has no depth alarm"


def test_job_event_rules_match_the_job_events_service_pattern(functions: dict[str, dict[str, Any]]) -> None:
    """The rules subscribe JobEventsFunction to exactly stratus.jobs.events.EVENT_PATTERN: our own events
    on the custom bus (EventBus), SageMaker's and Batch's state changes on the default bus."""
    rules = {
        name: event["Properties"]
        for name, event in functions["JobEventsFunction"]["Events"].items()
        if event["Type"] == "EventBridgeRule"
    }
    patterns = []
    for name, props in rules.items():
        pattern = props["Pattern"]
        bus = _ref_name(props.get("EventBusName"))
        if pattern["source"][0].startswith("stratus."):
            assert bus == "EventBus", f"{name}: our events are on the custom bus"
        else:
            assert "EventBusName" not in props, f"{name}: AWS service events are on the default bus"
        patterns.append({"source": pattern["source"], "detail-type": pattern["detail-type"]})

    def key(p: dict[str, list[str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(sorted(p["source"])), tuple(sorted(p["detail-type"]))

    assert sorted(map(key, patterns)) == sorted(map(key, EVENT_PATTERN["$or"]))


def test_sweeper_runs_every_five_minutes(functions: dict[str, dict[str, Any]]) -> None:
    schedules = [
        e["Properties"]["Schedule"]
        for e in functions["SweeperFunction"]["Events"].values()
        if e["Type"] == "Schedule"
    ]
    assert schedules == ["rate(5 minutes)"]


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


def test_webhook_deliveries_have_their_own_queue_dead_letter_queue_and_consumer(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    queue = resources["WebhooksQueue"]["Properties"]
    dead_letter = resources["WebhooksDeadLetterQueue"]["Properties"]
    assert _ref_name(queue["RedrivePolicy"]["deadLetterTargetArn"]) == "WebhooksDeadLetterQueue"
    assert queue["SqsManagedSseEnabled"] is True and dead_letter["SqsManagedSseEnabled"] is True
    assert "WebhooksDeadLetterQueue" in _alarmed_queues(resources)
    # Both are TLS-only.
    policies = [
        p["Properties"]
        for p in _of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"WebhooksQueue", "WebhooksDeadLetterQueue"} <= {_ref_name(q) for q in p["Properties"]["Queues"]}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
    )
    # Exactly one consumer, WebhooksFunction, reporting partial failures.
    consumers = {
        name: event["Properties"]
        for name, props in functions.items()
        for event in props.get("Events", {}).values()
        if event["Type"] == "SQS" and _ref_name(event["Properties"]["Queue"]) == "WebhooksQueue"
    }
    assert list(consumers) == ["WebhooksFunction"]
    assert "ReportBatchItemFailures" in consumers["WebhooksFunction"]["FunctionResponseTypes"]
    assert [e["Type"] for e in functions["WebhooksFunction"]["Events"].values()] == ["SQS"]
    # It hands each body to the message router, like the dispatcher.
    tree = ast.parse((ROOT / "functions/webhooks/app.py").read_text())
    [call] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "build_sqs_handler"
    ]
    assert ast.unparse(call.args[0]) == "container.messages"


async def test_the_message_router_delivers_webhooks(container: Container) -> None:
    """WebhooksFunction's router (container.messages) handles webhook.deliver."""
    from stratus.capabilities.webhooks.service import DELIVER_MESSAGE

    assert DELIVER_MESSAGE in container.messages.types


# Which functions' code sends to which queue: JobsQueue carries dataset.process (data uploads, sweeper) and
# job.start (jobs, model downloads, the dispatcher's delayed re-sends, sweeper); WebhooksQueue carries
# webhook.deliver (test deliveries from the jobs group, job and dataset events, the sweeper's failed jobs,
# retries from its consumer, and from the dispatcher for deliveries queued on JobsQueue before).
QUEUE_SENDERS = {
    "JobsQueue": {
        "DataFunction",
        "JobsFunction",
        "ModelsFunction",
        "AiFunction",
        "DispatcherFunction",
        "SweeperFunction",
    },
    "WebhooksQueue": {
        "JobsFunction",
        "JobEventsFunction",
        "SweeperFunction",
        "WebhooksFunction",
        "DispatcherFunction",
    },
}


def test_exactly_the_functions_that_queue_messages_may_send_them(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    for queue, senders in QUEUE_SENDERS.items():
        granted = {
            name
            for name, props in functions.items()
            for policy in _as_list(props.get("Policies", []))
            if isinstance(policy, dict)
            and "SQSSendMessagePolicy" in policy
            and _ref_name(policy["SQSSendMessagePolicy"]["QueueName"]) == queue
        }
        assert granted == senders, queue
    # No inline statement sends to a queue around the policy templates.
    for name, props in functions.items():
        assert not any(a.startswith("sqs:Send") for a in _actions(_function_statements(resources, props))), (
            name
        )


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
            actions = _as_list(statement["Action"])
            for action in actions:
                assert not _WILDCARD_ACTION.match(action), f"{owner}: {statement.get('Sid')} allows {action}"
            if "*" in _as_list(statement["Resource"]):
                # Only actions without resource-level permissions, alone in their statement.
                assert set(actions) <= RESOURCE_STAR_ACTIONS, (
                    f"{owner}: {statement.get('Sid')} grants {sorted(set(actions) - RESOURCE_STAR_ACTIONS)} "
                    "on Resource '*'"
                )
                for action in actions:
                    if action in RESOURCE_STAR_CONDITIONS:
                        keys = {k for test in statement.get("Condition", {}).values() for k in test}
                        assert RESOURCE_STAR_CONDITIONS[action] in keys, (
                            f"{owner}: {statement.get('Sid')} grants {action} on '*' without "
                            f"{RESOURCE_STAR_CONDITIONS[action]}"
                        )


def test_function_policies_are_scoped(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """Policies are inline statements, SAM policy templates scoped to one resource, or this stack's policies."""
    for name in EXPECTED_FUNCTIONS:
        assert "Role" not in functions[name], f"{name} must use its own SAM-generated role"
    for name, props in functions.items():
        for policy in _as_list(props.get("Policies", [])):
            if isinstance(policy, dict) and "Statement" in policy:
                continue
            if isinstance(policy, dict) and "Fn::If" in policy:  # an inline policy, conditionally
                branches = [b for b in policy["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
                assert branches and all(isinstance(b, dict) and "Statement" in b for b in branches), name
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


def _function_statements(resources: dict[str, Any], props: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Allow statement a function's Policies grant (inline or via this stack's managed policies),
    both branches of conditional statements included. SAM policy templates are reported by name."""
    found: list[dict[str, Any]] = []
    for policy in _as_list(props.get("Policies", [])):
        if isinstance(policy, dict) and "Fn::If" in policy:  # an inline policy, conditionally
            raw = [
                s
                for b in policy["Fn::If"][1:]
                if isinstance(b, dict)
                for s in _as_list(b.get("Statement", []))
            ]
        elif isinstance(policy, dict) and "Statement" in policy:
            raw = _as_list(policy["Statement"])
        elif _ref_name(policy) in resources:
            raw = _as_list(resources[_ref_name(policy) or ""]["Properties"]["PolicyDocument"]["Statement"])
        else:
            found.append({"Effect": "Allow", "Action": [f"template:{next(iter(policy))}"], "Resource": []})
            continue
        for statement in raw:
            found += [s for s in _conditional_branches(statement) if s["Effect"] == "Allow"]
    return found


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in _as_list(s["Action"])}


def test_sagemaker_jobs_run_as_their_own_role_passed_only_to_sagemaker(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    role = resources["SageMakerExecutionRole"]
    assert role["Type"] == "AWS::IAM::Role"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in trust), "confused-deputy guard"
    granted = _actions(
        [
            s
            for policy in role["Properties"]["Policies"]
            for raw in policy["PolicyDocument"]["Statement"]
            for s in _conditional_branches(raw)
        ]
    )
    assert {
        "s3:GetObject",
        "s3:PutObject",
        "events:PutEvents",
        "ecr:BatchGetImage",
        "logs:PutLogEvents",
    } <= granted
    assert not any(a.startswith(("iam:", "sagemaker:", "secretsmanager:", "sqs:")) for a in granted), granted
    # The one delete: a failed or stopped model download removes its partial snapshot, nothing else.
    deletes = [
        s
        for policy in role["Properties"]["Policies"]
        for raw in policy["PolicyDocument"]["Statement"]
        for s in _conditional_branches(raw)
        if "s3:DeleteObject" in _as_list(s["Action"])
    ]
    assert [_as_list(s["Action"]) for s in deletes] == [["s3:DeleteObject"]]
    assert "/users/*/jobs/*/snapshot/*" in str(deletes[0]["Resource"])

    pass_role = [
        s
        for name, props in functions.items()
        for s in _function_statements(resources, props)
        if "iam:PassRole" in _as_list(s["Action"])
    ]
    assert pass_role, "nothing may pass the SageMaker execution role"
    for statement in pass_role:
        assert _as_list(statement["Action"]) == ["iam:PassRole"]
        assert _ref_name(statement["Resource"]) == "SageMakerExecutionRole"
        passed_to = statement.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
        assert passed_to == "sagemaker.amazonaws.com", "iam:PassRole without iam:PassedToService"
    dispatcher = _function_statements(resources, functions["DispatcherFunction"])
    assert {
        "sagemaker:CreateTrainingJob",
        "sagemaker:AddTags",
        "iam:PassRole",
        "batch:SubmitJob",
    } <= _actions(dispatcher)
    others = {name: _actions(_function_statements(resources, p)) for name, p in functions.items()}
    for name, actions in others.items():
        if name != "DispatcherFunction":
            assert not {"iam:PassRole", "sagemaker:CreateTrainingJob", "batch:SubmitJob"} & actions, name


def test_job_backend_permissions_are_where_the_code_needs_them(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """Stops come from the jobs group's routes (JobService.stop); backend reads (JobEventsService: a job's
    heartbeat and finish checks) from the job-events function and the sweeper; no HTTP route reads a job's
    state from its backend."""
    granted = {name: _actions(_function_statements(resources, p)) for name, p in functions.items()}
    stops = {"sagemaker:StopTrainingJob", "batch:TerminateJob"}
    reads = {"sagemaker:DescribeTrainingJob", "batch:DescribeJobs"}
    assert {name for name, actions in granted.items() if stops & actions} == {"JobsFunction"}
    assert stops <= granted["JobsFunction"]
    assert {name for name, actions in granted.items() if reads & actions} == {
        "JobEventsFunction",
        "SweeperFunction",
    }
    for name in ("JobEventsFunction", "SweeperFunction"):
        assert reads <= granted[name], name


SECRETS_ACTIONS = {"secretsmanager:GetSecretValue", "kms:Decrypt"}
# Exactly what each HTTP function may do beyond reading the secrets (template: = a SAM policy template,
# its queue or bus checked elsewhere): what its group's services call (see template.yaml).
HTTP_FUNCTION_ACTIONS = {
    # GET /ready: HeadBucket and the jobs queue's attributes.
    "PlatformFunction": {"s3:ListBucket", "sqs:GetQueueAttributes"},
    "DataFunction": {
        "template:SQSSendMessagePolicy",
        "template:EventBridgePutEventsPolicy",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:ListBucket",
        "s3:GetBucketLocation",
    },
    "JobsFunction": {
        "template:SQSSendMessagePolicy",
        "sagemaker:StopTrainingJob",
        "batch:TerminateJob",
        # LoRA/QLoRA: the dataset is read before queuing; /test runs on the inference endpoint.
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "sagemaker:InvokeEndpointAsync",
    },
    "ModelsFunction": {
        "template:SQSSendMessagePolicy",
        "execute-api:ManageConnections",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "sagemaker:InvokeEndpointAsync",
    },
    "AiFunction": {
        "template:SQSSendMessagePolicy",
        "execute-api:ManageConnections",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "sagemaker:InvokeEndpointAsync",
        # Streamed chat (/api/chat, /v1/chat/completions) on the real-time chat endpoint.
        "sagemaker:InvokeEndpointWithResponseStream",
    },
}
# Object keys each function may touch (prefixes in the artifacts bucket).
OBJECT_PREFIXES = {
    "DataFunction": ("users/*/datasets/", "users/*/files/"),
    "JobsFunction": ("users/*/datasets/", "inference/inputs/", "inference/outputs/", "inference/failures/"),
    "ModelsFunction": ("users/*/jobs/", "inference/inputs/", "inference/outputs/", "inference/failures/"),
    "AiFunction": (
        "users/*/jobs/",
        "users/*/audio/",
        "users/*/media/inputs/",
        "inference/inputs/",
        "inference/outputs/",
        "inference/failures/",
    ),
    "SweeperFunction": ("users/*/datasets/",),
}


def _object_arns(statement: dict[str, Any]) -> list[str]:
    return [
        r["Fn::Sub"].removeprefix("${ArtifactsBucket.Arn}/")
        for r in _as_list(statement["Resource"])
        if isinstance(r, dict)
        and isinstance(r.get("Fn::Sub"), str)
        and r["Fn::Sub"].startswith("${ArtifactsBucket.Arn}/")
    ]


def test_http_functions_get_only_what_their_group_needs(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    for name, expected in HTTP_FUNCTION_ACTIONS.items():
        statements = _function_statements(resources, functions[name])
        assert _actions(statements) - SECRETS_ACTIONS == expected, name
    assert "PlatformFunction" not in OBJECT_PREFIXES, "no platform route reads or writes objects"
    for name, prefixes in OBJECT_PREFIXES.items():
        for statement in _function_statements(resources, functions[name]):
            if not any(
                a.startswith("s3:") and a not in {"s3:ListBucket", "s3:GetBucketLocation"}
                for a in _as_list(statement["Action"])
            ):
                continue
            arns = _object_arns(statement)
            assert arns and all(arn.startswith(prefixes) for arn in arns), (name, statement.get("Sid"))
    # Writes are the inference request inputs (SageMaker writes the rest), synthesized speech and the source
    # images of generations; the ai group never deletes.
    for name, writes in (
        ("ModelsFunction", (["inference/inputs/*"],)),
        ("AiFunction", (["inference/inputs/*"], ["users/*/audio/*"], ["users/*/media/inputs/*"])),
    ):
        for statement in _function_statements(resources, functions[name]):
            if "s3:PutObject" in _as_list(statement["Action"]):
                assert _object_arns(statement) in writes, (name, statement.get("Sid"))


def test_the_sweeper_may_finish_what_it_fails(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """A dataset the sweeper gives up on loses its file and announces dataset.processed (DatasetService._fail),
    a job it fails queues training.failed webhooks: it may delete dataset objects (only those) and publish."""
    statements = _function_statements(resources, functions["SweeperFunction"])
    actions = _actions(statements)
    assert {"template:EventBridgePutEventsPolicy", "s3:DeleteObject"} <= actions
    assert not {"s3:PutObject", "s3:GetObject"} & actions
    deletes = [s for s in statements if "s3:DeleteObject" in _as_list(s["Action"])]
    assert [_object_arns(s) for s in deletes] == [["users/*/datasets/*"]]


def test_websocket_api_routes_connect_disconnect_and_default_to_its_function(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    api = resources["WebSocketApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api"
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"

    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in _of_type(resources, "AWS::ApiGatewayV2::Route").values()
        if _ref_name(r["Properties"]["ApiId"]) == "WebSocketApi"
    }
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    integrations = _of_type(resources, "AWS::ApiGatewayV2::Integration")
    for key, route in routes.items():
        target = route["Target"]["Fn::Sub"]
        match = re.fullmatch(r"integrations/\$\{(\w+)\}", target)
        assert match and match.group(1) in integrations, f"{key} targets {target}"
        integration = integrations[match.group(1)]["Properties"]
        assert _ref_name(integration["ApiId"]) == "WebSocketApi"
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert "${WebSocketFunction.Arn}" in integration["IntegrationUri"]["Fn::Sub"], key

    permissions = [
        p["Properties"]
        for p in _of_type(resources, "AWS::Lambda::Permission").values()
        if _ref_name(p["Properties"]["FunctionName"]) == "WebSocketFunction"
    ]
    assert any(
        p["Principal"] == "apigateway.amazonaws.com" and "${WebSocketApi}/" in p["SourceArn"]["Fn::Sub"]
        for p in permissions
    ), "API Gateway may not invoke WebSocketFunction"

    stages = [
        s["Properties"]
        for s in _of_type(resources, "AWS::ApiGatewayV2::Stage").values()
        if _ref_name(s["Properties"]["ApiId"]) == "WebSocketApi"
    ]
    assert len(stages) == 1
    # STRATUS_WEBSOCKET_ENDPOINT ends in /${Stage}: the stage must carry that name.
    assert stages[0]["StageName"] == {"Ref": "Stage"}
    assert stages[0]["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    deployment = resources[_ref_name(stages[0]["DeploymentId"]) or ""]
    assert set(deployment["DependsOn"]) >= {
        r for r in resources if r.startswith("WebSocket") and r.endswith("Route")
    }


def test_websocket_pushes_are_scoped_and_the_websocket_function_gets_nothing_else(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    push = resources["WebSocketPushPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in push] == ["execute-api:ManageConnections"]
    assert push[0]["Resource"]["Fn::Sub"].endswith(":${WebSocketApi}/${Stage}/POST/@connections/*")
    # Pushers: NLP task completions seen by a waiting request (models), job events, the sweeper's failures,
    # and the WebSocket function's own replies. Nothing else pushes.
    pushers = {
        name
        for name, props in functions.items()
        if "WebSocketPushPolicy" in {_ref_name(p) for p in _as_list(props["Policies"])}
    }
    # DispatcherFunction: chat.reply pushes a reply's pieces to the chat's followers.
    assert pushers == {
        "ModelsFunction",
        "AiFunction",
        "JobEventsFunction",
        "SweeperFunction",
        "WebSocketFunction",
        "DispatcherFunction",
    }
    policies = _as_list(functions["WebSocketFunction"]["Policies"])
    # The chat grant (only with a chat endpoint): streamed replies to {"type": "chat"} messages.
    chat = [p for p in policies if isinstance(p, dict) and "InvokeChatEndpoint" in str(p)]
    assert len(chat) == 1 and chat[0]["Fn::If"][0] == "HasChat"
    assert _actions(chat[0]["Fn::If"][1]["Statement"]) == {"sagemaker:InvokeEndpointWithResponseStream"}
    websocket = [_ref_name(p) for p in policies if p not in chat]
    assert sorted(websocket, key=str) == ["SecretsReadPolicy", "WebSocketPushPolicy"]


def _evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """A tiny evaluator for the Ref / Fn::Split / Fn::Select / Fn::Join intrinsics used on parameters."""
    if isinstance(expression, str | int):
        return expression
    if "Ref" in expression:
        return parameters[expression["Ref"]]
    if "Fn::Split" in expression:
        delimiter, source = expression["Fn::Split"]
        return _evaluate(source, parameters).split(delimiter)
    if "Fn::Select" in expression:
        index, items = expression["Fn::Select"]
        return _evaluate(items, parameters)[int(index)]
    if "Fn::Join" in expression:
        delimiter, items = expression["Fn::Join"]
        return delimiter.join(_evaluate(item, parameters) for item in items)
    raise AssertionError(f"unexpected intrinsic {expression!r}")


@pytest.mark.parametrize(
    ("image_uri", "region", "account", "repository"),
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/stratus-worker:latest",
            "us-east-1",
            "123456789012",
            "stratus-worker",
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/worker@sha256:0a1b",
            "eu-west-1",
            "123456789012",
            "team/worker",
        ),
        (
            "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/worker:v1",
            "cn-north-1",
            "210987654321",
            "worker",
        ),
        ("123456789012.dkr.ecr.us-west-2.amazonaws.com/worker", "us-west-2", "123456789012", "worker"),
    ],
)
def test_worker_image_pull_is_scoped_to_its_repository(
    resources: dict[str, Any], image_uri: str, region: str, account: str, repository: str
) -> None:
    """The ECR pull grant names exactly the repository WorkerImageUri points at (tag or digest cut off)."""
    statements = resources["SageMakerExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    pull = next(
        s for raw in statements for s in _conditional_branches(raw) if s.get("Sid") == "PullWorkerImage"
    )
    pattern, variables = pull["Resource"]["Fn::Sub"]
    values = {
        name: _evaluate(expression, {"WorkerImageUri": image_uri}) for name, expression in variables.items()
    }
    arn = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), pattern)
    assert arn == f"arn:${{AWS::Partition}}:ecr:{region}:{account}:repository/{repository}"


# --- NLP inference endpoint ----------------------------------------------------------------------

# Every resource DeployInferenceEndpoint=true adds (section 10 of template.yaml).
INFERENCE_RESOURCES = {
    "InferenceExecutionRole": "AWS::IAM::Role",
    "InferenceModel": "AWS::SageMaker::Model",
    "InferenceEndpointConfig": "AWS::SageMaker::EndpointConfig",
    "InferenceEndpoint": "AWS::SageMaker::Endpoint",
    "InferenceNotificationsTopic": "AWS::SNS::Topic",
    "InferenceNotificationsSubscription": "AWS::SNS::Subscription",
    "InferenceNotificationsInvokePermission": "AWS::Lambda::Permission",
    "InferenceScalableTarget": "AWS::ApplicationAutoScaling::ScalableTarget",
    "InferenceBacklogScalingPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
    "InferenceScaleFromZeroPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
    "InferenceBacklogWithoutCapacityAlarm": "AWS::CloudWatch::Alarm",
}
WORKER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stratus-worker:latest"


def _holds(template: dict[str, Any], expression: Any, parameters: dict[str, str]) -> bool:
    """Evaluate a condition (Fn::Equals / Not / And / Or / Condition) for the given parameter values."""
    if "Condition" in expression:
        return _holds(template, template["Conditions"][expression["Condition"]], parameters)
    if "Fn::Equals" in expression:
        left, right = (_evaluate(side, parameters) for side in expression["Fn::Equals"])
        return bool(left == right)
    if "Fn::Not" in expression:
        return not _holds(template, expression["Fn::Not"][0], parameters)
    if "Fn::And" in expression:
        return all(_holds(template, item, parameters) for item in expression["Fn::And"])
    if "Fn::Or" in expression:
        return any(_holds(template, item, parameters) for item in expression["Fn::Or"])
    raise AssertionError(f"unexpected condition {expression!r}")


def _choose(template: dict[str, Any], expression: Any, parameters: dict[str, str]) -> Any:
    """Resolve (nested) Fn::If for the given parameter values; AWS::NoValue comes back as None."""
    while isinstance(expression, dict) and "Fn::If" in expression:
        condition, yes, no = expression["Fn::If"]
        expression = yes if _holds(template, {"Condition": condition}, parameters) else no
    return None if expression == {"Ref": "AWS::NoValue"} else expression


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{([\w:]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def _inference_parameters(template: dict[str, Any], **overrides: str) -> dict[str, str]:
    defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    return {**defaults, **overrides}


def test_inference_parameters_are_optional_and_grouped(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    deploy = parameters["DeployInferenceEndpoint"]
    assert deploy["Type"] == "String"
    assert set(deploy["AllowedValues"]) == {"true", "false"}
    assert deploy["Default"] == "false", "the endpoint costs money: it must be opt-in"
    assert parameters["InferenceInstanceType"]["Default"] == "ml.g5.xlarge"
    assert (
        parameters["InferenceInstanceType"]["AllowedPattern"]
        == parameters["SageMakerGpuInstanceType"]["AllowedPattern"]
    )
    maximum = parameters["InferenceMaxInstances"]
    assert (maximum["Type"], maximum["Default"], maximum["MinValue"], maximum["MaxValue"]) == (
        "Number",
        2,
        1,
        20,
    )
    assert parameters["InferenceEndpointName"]["Default"] == ""
    # SageMaker lowercases endpoint names in ARNs and IAM compares ARNs case-sensitively.
    pattern = re.compile(parameters["InferenceEndpointName"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("my-nlp-endpoint")
    assert not pattern.fullmatch("My-Endpoint")
    grouped = {
        name
        for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        for name in group["Parameters"]
    }
    assert {
        "DeployInferenceEndpoint",
        "InferenceInstanceType",
        "InferenceMaxInstances",
        "InferenceEndpointName",
    } <= grouped


@pytest.mark.parametrize(
    ("deploy", "image", "external", "expected"),
    [
        ("false", "", "", None),
        ("false", WORKER_IMAGE, "", None),
        # Asked for, but there is no image to serve yet: nothing is deployed.
        ("true", "", "", None),
        ("true", "", "external-nlp", "external"),
        ("false", WORKER_IMAGE, "external-nlp", "external"),
        ("true", WORKER_IMAGE, "", "deployed"),
        # Both: the deployed endpoint wins.
        ("true", WORKER_IMAGE, "external-nlp", "deployed"),
    ],
)
def test_api_uses_and_may_invoke_exactly_the_configured_inference_endpoint(
    template: dict[str, Any],
    resources: dict[str, Any],
    functions: dict[str, dict[str, Any]],
    deploy: str,
    image: str,
    external: str,
    expected: str | None,
) -> None:
    """STRATUS_INFERENCE_ENDPOINT_NAME and the models function's InvokeEndpointAsync grant name the same
    endpoint: the deployed one when DeployInference holds, else InferenceEndpointName, else none (and no
    grant). No other function may invoke it."""
    parameters = _inference_parameters(
        template, DeployInferenceEndpoint=deploy, WorkerImageUri=image, InferenceEndpointName=external
    )
    assert _holds(template, {"Condition": "DeployInference"}, parameters) == (expected == "deployed")
    assert _holds(template, {"Condition": "HasInference"}, parameters) == (expected is not None)

    deployed_name = _substitute(
        resources["InferenceEndpoint"]["Properties"]["EndpointName"]["Fn::Sub"], parameters
    )
    assert deployed_name == "stratus-dev-nlp"
    invokers = {
        name
        for name, props in functions.items()
        if "sagemaker:InvokeEndpointAsync" in _actions(_function_statements(resources, props))
    }
    # NLP tasks and image predictions (models), recognition, audio and embeddings (ai), fine-tune tests
    # (jobs) and chat replies (dispatcher) invoke the endpoint.
    assert invokers == {"ModelsFunction", "AiFunction", "JobsFunction", "DispatcherFunction"}
    for api in (functions["ModelsFunction"], functions["AiFunction"]):
        variable = _choose(
            template, api["Environment"]["Variables"]["STRATUS_INFERENCE_ENDPOINT_NAME"], parameters
        )
        if expected is None:
            assert variable is None
        elif expected == "deployed":
            assert variable == {"Fn::GetAtt": ["InferenceEndpoint", "EndpointName"]}
        else:
            assert variable == {"Ref": "InferenceEndpointName"}
        endpoint_name = {None: None, "deployed": deployed_name, "external": external}[expected]

        statements = [
            raw
            for policy in _as_list(api["Policies"])
            if isinstance(policy, dict) and "Statement" in policy
            for raw in policy["Statement"]
        ]
        invoke = [raw for raw in statements if "InvokeInferenceEndpoint" in str(raw)]
        assert len(invoke) == 1
        assert invoke[0]["Fn::If"][0] == "HasInference", "the grant must exist exactly when an endpoint does"
        statement = _choose(template, invoke[0], parameters)
        if endpoint_name is None:
            assert statement is None
            continue
        assert statement["Action"] == "sagemaker:InvokeEndpointAsync"
        pattern, variables = statement["Resource"]["Fn::Sub"]
        name = _choose(template, variables["Name"], parameters)
        name = _substitute(name["Fn::Sub"], parameters) if "Fn::Sub" in name else _evaluate(name, parameters)
        arn = _substitute(pattern, {"Name": name})
        # SageMaker endpoint ARNs carry the name in lowercase.
        assert arn == (
            f"arn:${{AWS::Partition}}:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{endpoint_name.lower()}"
        )


def test_every_inference_resource_is_conditional_on_deploy_inference(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    inference = {name: r for name, r in resources.items() if name.startswith("Inference")}
    assert {name: r["Type"] for name, r in inference.items()} == INFERENCE_RESOURCES
    for name, resource in inference.items():
        assert resource.get("Condition") == "DeployInference", name
    assert template["Outputs"]["InferenceEndpointName"]["Condition"] == "DeployInference"
    assert _ref_name(template["Outputs"]["InferenceEndpointName"]["Value"]) == "InferenceEndpoint"


def test_inference_model_runs_the_worker_image(resources: dict[str, Any]) -> None:
    model = resources["InferenceModel"]["Properties"]
    assert _ref_name(model["ExecutionRoleArn"]) == "InferenceExecutionRole"
    container = model["PrimaryContainer"]
    # SageMaker runs it as `docker run <image> serve`: the image ships that script.
    assert container["Image"] == {"Ref": "WorkerImageUri"}
    assert (ROOT / "containers/worker/serve").is_file()
    environment = container["Environment"]
    assert environment["STRATUS_RUNTIME"] == "aws"
    assert _ref_name(environment["STRATUS_ARTIFACTS_BUCKET"]) == "ArtifactsBucket"
    assert environment["STRATUS_MODEL_CACHE"].startswith("/tmp/")
    assert "ModelDataUrl" not in container, "models come from the image and the artifacts bucket"


def test_inference_endpoint_is_asynchronous_with_responses_under_inference_in_the_bucket(
    resources: dict[str, Any],
) -> None:
    config = resources["InferenceEndpointConfig"]["Properties"]
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InitialInstanceCount"] == 1
    assert variant["InstanceType"] == {"Ref": "InferenceInstanceType"}
    assert variant["ModelName"] == {"Fn::GetAtt": ["InferenceModel", "ModelName"]}
    asynchronous = config["AsyncInferenceConfig"]
    assert asynchronous["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 4
    output = asynchronous["OutputConfig"]
    assert output["S3OutputPath"] == {"Fn::Sub": "s3://${ArtifactsBucket}/inference/outputs"}
    assert output["S3FailurePath"] == {"Fn::Sub": "s3://${ArtifactsBucket}/inference/failures"}
    endpoint = resources["InferenceEndpoint"]["Properties"]
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": ["InferenceEndpointConfig", "EndpointConfigName"]}
    # A fixed, lowercase name: IAM, logs and auto scaling name it without a dependency.
    assert endpoint["EndpointName"] == {"Fn::Sub": "stratus-${Stage}-nlp"}


def test_inference_endpoint_notifies_completions_and_failures_on_its_topic(resources: dict[str, Any]) -> None:
    output = resources["InferenceEndpointConfig"]["Properties"]["AsyncInferenceConfig"]["OutputConfig"]
    notification = output["NotificationConfig"]
    assert notification["SuccessTopic"] == {"Ref": "InferenceNotificationsTopic"}
    assert notification["ErrorTopic"] == {"Ref": "InferenceNotificationsTopic"}
    # The topic is not KMS-encrypted: its messages must stay S3 locations and a status, never a response.
    assert "IncludeInferenceResponseIn" not in notification
    topic = resources["InferenceNotificationsTopic"]["Properties"]
    # SageMaker cannot publish to a topic under the AWS-managed key.
    assert "alias/aws/sns" not in str(topic.get("KmsMasterKeyId", ""))


def test_inference_notifications_are_delivered_to_the_job_events_function(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """SNS subscription plus an invoke permission scoped to the topic (not a SAM SNS event: those
    cannot carry the DeployInference condition)."""
    assert not any(
        event["Type"] == "SNS" for event in functions["JobEventsFunction"].get("Events", {}).values()
    )
    subscriptions = [
        (name, r)
        for name, r in _of_type(resources, "AWS::SNS::Subscription").items()
        if _ref_name(r["Properties"]["TopicArn"]) == "InferenceNotificationsTopic"
    ]
    assert len(subscriptions) == 1
    name, subscription = subscriptions[0]
    assert subscription["Condition"] == "DeployInference", name
    assert subscription["Properties"]["Protocol"] == "lambda"
    assert subscription["Properties"]["Endpoint"] == {"Fn::GetAtt": ["JobEventsFunction", "Arn"]}

    permissions = [
        (name, r)
        for name, r in _of_type(resources, "AWS::Lambda::Permission").items()
        if r["Properties"]["Principal"] == "sns.amazonaws.com"
    ]
    assert len(permissions) == 1
    name, permission = permissions[0]
    assert permission["Condition"] == "DeployInference", name
    props = permission["Properties"]
    assert props["Action"] == "lambda:InvokeFunction"
    assert _ref_name(props["FunctionName"]) == "JobEventsFunction"
    assert props["SourceArn"] == {"Ref": "InferenceNotificationsTopic"}, "any topic could invoke it"
    # The handler takes SNS records (SageMaker InferenceResult notifications) besides EventBridge events.
    assert "on_inference_result" in (ROOT / "functions/job_events/app.py").read_text()


def test_inference_role_may_publish_only_to_the_notifications_topic(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """SageMaker publishes the notifications with the endpoint's execution role: that role, and no other
    role, policy or function, may sns:Publish - to that topic only. Same-account IAM suffices: no topic
    policy."""
    publishing = [
        (owner, statement)
        for owner, raw in _iam_statements(resources, functions)
        for statement in _conditional_branches(raw)
        if any(a.lower().startswith("sns:") for a in _as_list(statement["Action"]))
    ]
    # The NLP endpoint's role and the custom-task sandbox endpoint's (both notify on that topic).
    assert [owner for owner, _ in publishing] == ["InferenceExecutionRole", "SandboxExecutionRole"]
    for _, statement in publishing:
        assert statement["Effect"] == "Allow"
        assert _as_list(statement["Action"]) == ["sns:Publish"]
        assert _as_list(statement["Resource"]) == [{"Ref": "InferenceNotificationsTopic"}]
    assert not _of_type(resources, "AWS::SNS::TopicPolicy")


def test_custom_tasks_run_on_a_network_isolated_endpoint_of_their_own(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    """User code never runs on the NLP endpoint: the sandbox endpoint's model has no network, its role
    reads only the sandbox's queued inputs and writes only its responses, it requires the inner sandbox
    layers, scales to zero, and it is what the models function sends custom tasks to."""
    model = resources["SandboxModel"]["Properties"]
    assert model["EnableNetworkIsolation"] is True
    assert model["ExecutionRoleArn"] == {"Fn::GetAtt": ["SandboxExecutionRole", "Arn"]}
    env = model["PrimaryContainer"]["Environment"]
    assert set(env["STRATUS_SANDBOX_REQUIRE"].split(",")) >= {
        "landlock",
        "seccomp",
        "no_new_privs",
        "rlimits",
    }
    s3 = [
        statement
        for owner, raw in _iam_statements(resources, functions)
        if owner == "SandboxExecutionRole"
        for statement in _conditional_branches(raw)
        if any(str(a).startswith("s3:") for a in _as_list(statement["Action"]))
        and "ListBucket" not in str(statement["Action"])
    ]
    granted = json.dumps([statement["Resource"] for statement in s3])
    assert "inference/inputs/sandbox/*" in granted and "inference/outputs/sandbox/*" in granted
    assert "snapshot" not in granted and "users/" not in granted
    config = resources["SandboxEndpointConfig"]["Properties"]
    assert "AsyncInferenceConfig" in config
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == {
        "Fn::Sub": "s3://${ArtifactsBucket}/inference/outputs/sandbox"
    }
    assert resources["SandboxScalableTarget"]["Properties"]["MinCapacity"] == 0
    assert functions["ModelsFunction"]["Environment"]["Variables"]["STRATUS_CUSTOM_TASK_ENDPOINT_NAME"] == {
        "Fn::If": [
            "DeployInference",
            {"Fn::GetAtt": ["SandboxEndpoint", "EndpointName"]},
            {"Ref": "AWS::NoValue"},
        ]
    }


def test_inference_endpoint_scales_to_zero_and_back(resources: dict[str, Any]) -> None:
    target = resources["InferenceScalableTarget"]
    assert "InferenceEndpoint" in _as_list(target["DependsOn"])
    props = target["Properties"]
    assert props["ServiceNamespace"] == "sagemaker"
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert props["ResourceId"] == {"Fn::Sub": "endpoint/stratus-${Stage}-nlp/variant/AllTraffic"}
    assert props["MinCapacity"] == 0, "an idle endpoint must cost nothing"
    assert props["MaxCapacity"] == {"Ref": "InferenceMaxInstances"}

    backlog = resources["InferenceBacklogScalingPolicy"]["Properties"]
    assert _ref_name(backlog["ScalingTargetId"]) == "InferenceScalableTarget"
    assert backlog["PolicyType"] == "TargetTrackingScaling"
    tracking = backlog["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"], metric["Statistic"]) == (
        "AWS/SageMaker",
        "ApproximateBacklogSizePerInstance",
        "Average",
    )
    assert [(d["Name"], _ref_name(d["Value"])) for d in metric["Dimensions"]] == [
        ("EndpointName", "InferenceEndpoint")
    ]
    assert (tracking["TargetValue"], tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (
        5,
        600,
        60,
    )

    # With no instance the per-instance backlog does not exist: an alarm on HasBacklogWithoutCapacity
    # adds the first instance.
    alarm = resources["InferenceBacklogWithoutCapacityAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SageMaker",
        "HasBacklogWithoutCapacity",
        "Average",
    )
    assert [(d["Name"], _ref_name(d["Value"])) for d in alarm["Dimensions"]] == [
        ("EndpointName", "InferenceEndpoint")
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (60, 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert [_ref_name(action) for action in alarm["AlarmActions"]] == ["InferenceScaleFromZeroPolicy"]

    from_zero = resources["InferenceScaleFromZeroPolicy"]["Properties"]
    assert _ref_name(from_zero["ScalingTargetId"]) == "InferenceScalableTarget"
    assert from_zero["PolicyType"] == "StepScaling"
    step = from_zero["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert [s["ScalingAdjustment"] for s in step["StepAdjustments"]] == [1]


def _role_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for policy in role["Properties"]["Policies"]
        for raw in _as_list(policy["PolicyDocument"]["Statement"])
        for s in _conditional_branches(raw)
    ]


def test_inference_role_is_assumable_only_by_sagemaker_and_never_deletes(resources: dict[str, Any]) -> None:
    role = resources["InferenceExecutionRole"]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    assert [s["Action"] for s in trust] == ["sts:AssumeRole"]
    assert all(
        s["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"} for s in trust
    ), "confused-deputy guard"

    statements = _role_statements(role)
    granted = _actions(statements)
    assert {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "logs:PutLogEvents",
    } <= granted
    assert "s3:DeleteObject" not in granted
    assert not any(
        a.startswith(("iam:", "sagemaker:", "secretsmanager:", "sqs:", "events:")) for a in granted
    ), granted
    # Responses are written under inference/ only; reads are the snapshots and the queued inputs.
    for statement in statements:
        actions = set(_as_list(statement["Action"]))
        arns = [
            r["Fn::Sub"] for r in _as_list(statement["Resource"]) if isinstance(r, dict) and "Fn::Sub" in r
        ]
        if actions & {"s3:PutObject", "s3:AbortMultipartUpload"}:
            assert arns and all(r.startswith("${ArtifactsBucket.Arn}/inference/") for r in arns), statement
        if "s3:GetObject" in actions:
            assert arns and all(r.startswith("${ArtifactsBucket.Arn}/") for r in arns), statement
        if any(a.startswith("logs:") for a in actions):
            assert all("log-group:/aws/sagemaker/Endpoints/stratus-${Stage}-nlp" in r for r in arns), (
                statement
            )
    # The image pull names exactly the repository the training role may pull (same WorkerImageUri parsing).
    training_pull = next(
        s for s in _role_statements(resources["SageMakerExecutionRole"]) if s.get("Sid") == "PullWorkerImage"
    )
    inference_pull = next(s for s in statements if s.get("Sid") == "PullWorkerImage")
    assert inference_pull["Resource"] == training_pull["Resource"]
    assert sorted(inference_pull["Action"]) == sorted(training_pull["Action"])
