"""Every setting of every binary is validated at start: a bad value stops the process with a
message naming the setting, never a silent default or clamp.

The table below holds, for each setting the settings scan finds a binary reading, either a bad
value (with whatever other settings make it read) or the reason no value of it can be told bad
at start. Each bad value is given to the real binary (target/debug, built by scripts/test), which
must exit non-zero within a few seconds, naming the setting. A setting the table does not cover
fails the test, so a new setting needs its row.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path

from settings_scan import ROOT, scan

# A setting -> (bad value, other settings it needs) or a string: why no value is bad at start.
Row = tuple[str, dict[str, str]] | str

SQLSERVER = {"SQL_PROVIDER": "sqlserver"}
SQLSERVER_WITH_STRING = {**SQLSERVER, "SQLSERVER_CONNECTION_STRING": "Server=tcp:127.0.0.1,1;Database=orders"}
RABBITMQ = {"QUEUE_TRANSPORT": "rabbitmq", "RABBITMQ_URL": "amqp://u:p@127.0.0.1:1/%2f"}
SERVICEBUS = {"QUEUE_TRANSPORT": "servicebus"}
OIDC = {"AUTH_MODE": "oidc", "JWT_ISSUER": "https://issuer.example/"}

COMMON: dict[str, Row] = {
    "AUTH_MODE": ("none", {}),
    "AZURE_CLIENT_ID": "a managed identity's client id: Entra ID refuses an unknown one at the first token request",
    "DATA_DIR": ("/etc/hostname", {}),
    "FANOUT_CHANNEL_PREFIX": "any Redis channel prefix",
    "HOST": ("localhost:80", {}),
    "IDENTITY_ENDPOINT": "set by the platform for its managed identity, never by hand",
    "JWKS_MIN_REFRESH_SECS": ("99999", OIDC),
    "JWT_AUDIENCE": "any audience string",
    "JWT_ISSUER": ("issuer.example", {"AUTH_MODE": "oidc"}),
    "JWT_SIGNING_KEY": ("short", {}),
    "LOG_FORMAT": ("pretty", {}),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("collector:4318", {}),
    "OTEL_SERVICE_NAME": "any service name",
    "PORT": ("http", {}),
    "REDIS_URL": ("http://127.0.0.1:6379", {}),
    "RUST_LOG": ("orders=loud", {}),
    "SQLSERVER_AUTH": ("kerberos", SQLSERVER_WITH_STRING),
    "SQLSERVER_CONNECTION_STRING": ("Server=tcp:127.0.0.1,1;Encrypt=sometimes", SQLSERVER),
    "SQL_PROVIDER": ("postgres", {}),
}
HANDLER: dict[str, Row] = {
    **COMMON,
    "API_CORS_ORIGINS": ("*", {}),
    "API_MAX_CONCURRENT_REQUESTS": ("0", {}),
    "FUNCTIONS_CUSTOMHANDLER_PORT": ("http", {}),
    "IDEMPOTENCY_TTL_SECS": ("5", {}),
    "QUEUE_NAMESPACE": "any prefix of queue names",
    "QUEUE_TRANSPORT": ("kafka", {}),
    "RABBITMQ_SHARDS": ("0", RABBITMQ),
    "RABBITMQ_URL": ("http://127.0.0.1:5672", {"QUEUE_TRANSPORT": "rabbitmq"}),
    "ServiceBusConnection": ("Endpoint=https://ns.example/;SharedAccessKeyName=k;SharedAccessKey=v", SERVICEBUS),
    "ServiceBusConnection__clientId": "a managed identity's client id: Entra ID refuses an unknown one at the first token request",
    "ServiceBusConnection__fullyQualifiedNamespace": ("https://ns.servicebus.windows.net/", SERVICEBUS),
    "WORKFLOW_TTL_SECS": ("5", {}),
}
# The hub's limits, read by the hub and by the local host (whose embedded mode serves a hub).
HUB_LIMITS: dict[str, Row] = {
    "HUB_CLIENT_TIMEOUT_SECS": ("1", {}),
    "HUB_HANDSHAKE_TIMEOUT_SECS": ("0", {}),
    "HUB_INVOCATIONS_PER_SEC": ("0", {}),
    "HUB_INVOCATION_BURST": ("0", {}),
    "HUB_KEEP_ALIVE_SECS": ("0", {}),
    "HUB_LONG_POLL_SECS": ("0", {}),
    "HUB_MAX_CONNECTIONS": ("0", {}),
    "HUB_MAX_MESSAGE_BYTES": ("1", {}),
    "HUB_SEND_QUEUE": ("1", {}),
}
HUB: dict[str, Row] = {
    **COMMON,
    **HUB_LIMITS,
    "HUB_CORS_ORIGINS": ("*", {}),
    "HUB_PORT": ("http", {}),
}
HOST: dict[str, Row] = {
    **HANDLER,
    **HUB_LIMITS,
    "APP_ROOT": ("/nonexistent", {}),
    "HANDLER_BIN": ("/nonexistent/handler", {"HOST_MODE": "process"}),
    "HOST_MAX_DELIVERY_COUNT": ("0", {}),
    "HOST_MODE": ("thread", {}),
    "HOST_WORKERS": ("0", {}),
    "LOCAL_HTTPS": ("maybe", {}),
    "WEB_DIST": ("/nonexistent", {}),
}

# The scan's name for each binary -> (executable, table, settings every run starts from).
BINARIES: dict[str, tuple[str, dict[str, Row], dict[str, str]]] = {
    "handler": ("handler", HANDLER, {"PORT": "0"}),
    "hub": ("signalr-hub", HUB, {}),
    "functions-host": ("functions-host", HOST, {"PORT": "0", "APP_ROOT": str(ROOT)}),
}

START_WITHIN = 10  # seconds: a bad setting must stop the process well before this


def binary(name: str) -> Path:
    path = ROOT / "target" / "debug" / name
    if not path.is_file():
        raise AssertionError(f"no {path}: build the binaries first (cargo build --workspace --bins)")
    return path


class SettingsValidation(unittest.TestCase):
    maxDiff = None

    def test_every_setting_of_every_binary_has_a_row(self):
        result = scan()
        for name, (_, table, _) in BINARIES.items():
            missing = sorted(result.names_for(name) - table.keys())
            self.assertEqual(missing, [], f"{name}: settings without a row in {__file__}")

    def test_a_bad_value_stops_each_binary_naming_the_setting(self):
        with tempfile.TemporaryDirectory() as data:
            for name, (exe, table, base) in BINARIES.items():
                for setting, row in sorted(table.items()):
                    if isinstance(row, str):
                        continue
                    value, needs = row
                    with self.subTest(binary=name, setting=setting, value=value):
                        self.assert_refused(binary(exe), {**base, "DATA_DIR": data, **needs, setting: value}, setting)

    def assert_refused(self, exe: Path, env: dict[str, str], setting: str) -> None:
        env = {"PATH": os.environ.get("PATH", ""), **env}
        try:
            done = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=START_WITHIN, cwd=ROOT)
        except subprocess.TimeoutExpired as running:
            out = (running.stdout or b"").decode(errors="replace") + (running.stderr or b"").decode(errors="replace")
            self.fail(f"{exe.name} accepted {setting}={env[setting]!r} and kept running:\n{out[-2000:]}")
        out = done.stdout + done.stderr
        self.assertNotEqual(done.returncode, 0, f"{exe.name} exited 0 with {setting}={env[setting]!r}:\n{out}")
        self.assertIn(setting, out, f"{exe.name} stopped without naming {setting}:\n{out}")


if __name__ == "__main__":
    unittest.main()
