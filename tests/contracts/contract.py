"""The configuration contract: every file that configures a binary sets every setting that binary
reads (settings_scan.py finds them in the Rust sources), and no file sets a setting nothing reads.

The exceptions are explicit and each carries its reason:
- RUNTIME: settings read by the Functions host, its bindings or Azure itself, not by our binaries;
- NOT_SET[target]: settings a binary reads that must *not* be set in that file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from settings_scan import ROOT, scan

# Read by the Functions host, a binding or the platform (never by our code, or not only by it).
RUNTIME: dict[str, str] = {
    "FUNCTIONS_WORKER_RUNTIME": "Functions host: `custom` selects the custom handler (Flex Consumption sets it through functionAppConfig.runtime instead)",
    "AzureWebJobsStorage": "Functions host storage (connection string: Azurite locally)",
    "AzureWebJobsStorage__accountName": "Functions host storage, identity-based (Azure)",
    "AzureWebJobsStorage__credential": "Functions host storage, identity-based (Azure)",
    "AzureWebJobsStorage__clientId": "Functions host storage: the user-assigned identity (Azure)",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host telemetry with Entra ID",
    "ServiceBusConnection__fullyQualifiedNamespace": "the serviceBusTrigger/serviceBus bindings' identity-based connection (the handler reads it too)",
    "ServiceBusConnection__credential": "the Service Bus bindings: managedidentity",
    "ServiceBusConnection__clientId": "the Service Bus bindings' user-assigned identity (the handler reads it too)",
    "RabbitMQConnection": "the RabbitMQ shim's rabbitMQTrigger/rabbitMQ bindings (connectionStringSetting)",
}

_FUNCTIONS_HOST_CHILD = {
    "FUNCTIONS_CUSTOMHANDLER_PORT": "set by the Functions host for its custom handler",
    "PORT": "standalone runs only; under the Functions host FUNCTIONS_CUSTOMHANDLER_PORT wins",
    "IDENTITY_ENDPOINT": "set by App Service / Functions / Container Apps for their managed identity, never by hand",
}
_LOCAL_SHIM = {
    **_FUNCTIONS_HOST_CHILD,
    "QUEUE_NAMESPACE": "function.json queue names carry no prefix: a prefix would split the publisher from the triggers",
    "AZURE_CLIENT_ID": "only with SQLSERVER_AUTH=entra (Azure); locally SQL Server uses a SQL login",
    "ServiceBusConnection": "only with QUEUE_TRANSPORT=servicebus; the RabbitMQ shim runs on RabbitMQ",
    "ServiceBusConnection__fullyQualifiedNamespace": "only with QUEUE_TRANSPORT=servicebus; the RabbitMQ shim runs on RabbitMQ",
    "ServiceBusConnection__clientId": "only with QUEUE_TRANSPORT=servicebus; the RabbitMQ shim runs on RabbitMQ",
}

NOT_SET: dict[str, dict[str, str]] = {
    "local.settings.example.json": _LOCAL_SHIM,
    "docker-compose.yml functions": _LOCAL_SHIM,
    "docker-compose.yml hub": {
        "PORT": "HUB_PORT is set and wins",
        "AZURE_CLIENT_ID": "only with SQLSERVER_AUTH=entra (Azure)",
        "IDENTITY_ENDPOINT": "set by the platform, never by hand",
    },
    "bicep function app": {
        **_FUNCTIONS_HOST_CHILD,
        "JWT_SIGNING_KEY": "dev mode only; Azure runs AUTH_MODE=oidc",
        "RABBITMQ_URL": "QUEUE_TRANSPORT=servicebus in Azure",
        "RABBITMQ_SHARDS": "QUEUE_TRANSPORT=servicebus in Azure",
        "QUEUE_NAMESPACE": "Service Bus queue names are fixed by function.json",
        "ServiceBusConnection": "a connection string with a key: local use only; Azure uses the managed identity",
    },
    "bicep hub": {
        "PORT": "HUB_PORT is set and wins",
        "IDENTITY_ENDPOINT": "set by the platform, never by hand",
        "JWT_SIGNING_KEY": "dev mode only; Azure runs AUTH_MODE=oidc",
    },
}


@dataclass
class Target:
    """One place that configures one binary."""

    label: str  # key of NOT_SET
    binary: str
    file: str
    extract: object  # (text) -> set[str]


def local_settings_names(text: str) -> set[str]:
    return set(json.loads(text)["Values"])


def compose_names(service: str):
    def extract(text: str) -> set[str]:
        env = yaml.safe_load(text)["services"][service].get("environment") or {}
        if isinstance(env, list):
            return {e.split("=", 1)[0] for e in env}
        return set(env)

    return extract


def _bracket_block(text: str, start: int) -> str:
    """The text of the `[...]` block opening at or after `start`."""
    i = text.index("[", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                return text[i : j + 1]
    raise ValueError("unbalanced brackets")


def _bicep_names(block: str) -> set[str]:
    lines = [ln.split("//", 1)[0] for ln in block.splitlines()]
    return set(re.findall(r"\bname:\s*'([^']+)'", "\n".join(lines)))


def bicep_function_app_names(text: str) -> set[str]:
    m = re.search(r"^\s*appSettings:\s*\[", text, re.M)
    if not m:
        raise ValueError("functionapp.bicep: no `appSettings: [` block")
    return _bicep_names(_bracket_block(text, m.start()))


def bicep_hub_names(text: str) -> set[str]:
    m = re.search(r"^resource\s+hubApp\s+'Microsoft\.App/containerApps@", text, re.M)
    if not m:
        raise ValueError("containerapps.bicep: no `resource hubApp 'Microsoft.App/containerApps@...'`")
    env = re.compile(r"^\s*env:\s*\[", re.M).search(text, m.end())
    if not env:
        raise ValueError("containerapps.bicep: the hub container has no `env: [` block")
    return _bicep_names(_bracket_block(text, env.start()))


TARGETS = [
    Target("local.settings.example.json", "handler", "local.settings.example.json", local_settings_names),
    Target("docker-compose.yml functions", "handler", "docker-compose.yml", compose_names("functions")),
    Target("docker-compose.yml hub", "hub", "docker-compose.yml", compose_names("hub-1")),
    Target("docker-compose.yml hub", "hub", "docker-compose.yml", compose_names("hub-2")),
    Target("bicep function app", "handler", "infra-bicep/modules/functionapp.bicep", bicep_function_app_names),
    Target("bicep hub", "hub", "infra-bicep/modules/containerapps.bicep", bicep_hub_names),
]


def read_by(binary: str, scan_result=None) -> set[str]:
    result = scan_result or scan()
    return result.names_for(binary)


def check(target: Target, text: str, reads: set[str]) -> list[str]:
    """Problems with one file for one binary; empty when the contract holds."""
    problems = []
    sets = target.extract(text)
    not_set = NOT_SET[target.label]
    for name in sorted(reads - sets - set(not_set)):
        problems.append(f"{target.file} ({target.label}): {name} is read by {target.binary} but not set")
    for name in sorted(sets - reads - set(RUNTIME)):
        problems.append(f"{target.file} ({target.label}): {name} is set but nothing reads it")
    for name in sorted(sets & set(not_set)):
        problems.append(f"{target.file} ({target.label}): {name} must not be set here: {not_set[name]}")
    for name in sorted(set(not_set) - reads - set(RUNTIME)):
        problems.append(f"{target.label}: exception for {name}, which {target.binary} does not read: drop it")
    return problems


def check_all(scan_result=None) -> list[str]:
    result = scan_result or scan()
    problems = []
    for t in TARGETS:
        problems += check(t, (ROOT / t.file).read_text(), read_by(t.binary, result))
    return problems
