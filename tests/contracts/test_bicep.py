"""Static checks of infra-bicep/ (no Bicep CLI here, so these stand in for part of what
`az bicep build` would catch): the resources the README lists exist, modules are wired with the
parameters and outputs they declare, the identity holds least-privilege roles, secrets are Key
Vault references only, and no parameters file holds a secret."""

import re
import unittest
from pathlib import Path

from settings_scan import ROOT

INFRA = ROOT / "infra-bicep"
BICEP = sorted(INFRA.rglob("*.bicep"))
PARAM_FILES = sorted(INFRA.rglob("*.bicepparam")) + sorted(INFRA.rglob("*.parameters.json"))

ROLES = {
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
TOO_BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}


def code(text: str) -> str:
    """Bicep without // comments and string contents kept (good enough for these checks)."""
    return "\n".join(re.sub(r"(?<!:)//.*$", "", ln) for ln in text.splitlines())


def block(text: str, start: int, open_ch="{", close_ch="}") -> str:
    i = text.index(open_ch, start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_ch:
            depth += 1
        elif text[j] == close_ch:
            depth -= 1
            if depth == 0:
                return text[i : j + 1]
    raise AssertionError("unbalanced")


def top_level_keys(obj: str) -> set[str]:
    """Keys at depth 1 of a `{ ... }` Bicep object literal."""
    keys, depth = set(), 0
    for ln in obj.splitlines():
        if depth == 1:
            m = re.match(r"\s*'?([A-Za-z_][\w-]*)'?\s*:", ln)
            if m:
                keys.add(m.group(1))
        depth += ln.count("{") + ln.count("[") - ln.count("}") - ln.count("]")
    return keys


def resource_types() -> set[str]:
    types = set()
    for f in BICEP:
        for m in re.finditer(r"^resource\s+\w+\s+'([^'@]+)@", f.read_text(), re.M):
            t = m.group(1)
            types.add(t)
    return types


def secret_findings(name: str, text: str) -> list[str]:
    """Secret-looking values in a parameters file."""
    found = []
    for m in re.finditer(r"^\s*param\s+(\w+)\s*=\s*(.+)$", text, re.M):
        key, value = m.group(1), m.group(2).strip()
        literal = value.strip("'\"")
        if re.search(r"password|secret|key$|apikey|token|connectionstring|sas", key, re.I) and literal:
            found.append(f"{name}: parameter {key} has a value")
    for m in re.finditer(r'"(\w+)"\s*:\s*\{\s*"value"\s*:\s*"([^"]+)"', text):
        if re.search(r"password|secret|key$|apikey|token|connectionstring|sas", m.group(1), re.I):
            found.append(f"{name}: parameter {m.group(1)} has a value")
    patterns = [
        (r"AccountKey=", "a storage account key"),
        (r"SharedAccessKey=", "a Service Bus/Event Hubs key"),
        (r"(?i)password\s*=", "a password in a connection string"),
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
        (r"(?<![\w/+-])[A-Za-z0-9+/]{40,}={0,2}(?![\w/+])", "a long base64 blob"),
        (r"rediss?://[^@\s']*:[^@\s']+@", "a Redis URL with a password"),
        (r"(?i)\bsig=[A-Za-z0-9%]+", "a SAS signature"),
    ]
    for pattern, what in patterns:
        if re.search(pattern, text):
            found.append(f"{name}: looks like {what}")
    return found


class Resources(unittest.TestCase):
    def test_every_resource_type_the_readme_lists_is_in_the_templates(self):
        readme = (INFRA / "README.md").read_text()
        table = readme.split("## What gets deployed", 1)[1].split("###", 1)[0]
        listed = set()
        for row in re.findall(r"^\|\s*(`Microsoft\.[^|]+)\|", table, re.M):
            base = re.match(r"`(Microsoft\.[\w.]+/\w+)`", row).group(1)
            listed.add(base)
            for sub in re.findall(r"\(\+ `(/[\w/]+)`\)", row):
                listed.add(base + sub)
        self.assertGreaterEqual(len(listed), 15)
        missing = sorted(listed - resource_types())
        self.assertEqual(missing, [], "listed in infra-bicep/README.md but not declared in any template")

    def test_flex_consumption_custom_handler(self):
        text = (INFRA / "modules/functionapp.bicep").read_text()
        self.assertRegex(text, r"tier:\s*'FlexConsumption'")
        self.assertRegex(text, r"name:\s*'FC1'")
        self.assertRegex(text, r"runtime:\s*\{\s*name:\s*'custom'")
        self.assertRegex(text, r"kind:\s*'functionapp,linux'")
        self.assertRegex(text, r"type:\s*'blobContainer'")
        settings = code(text)
        self.assertNotRegex(settings, r"name:\s*'FUNCTIONS_WORKER_RUNTIME'", "deprecated on Flex Consumption")
        self.assertNotRegex(settings, r"name:\s*'AzureWebJobsStorage'\s*,", "identity-based storage only")

    def test_the_platform_cors_answers_the_spas_preflights(self):
        # Linux/Flex Consumption: the host's own CORS middleware answers every preflight from
        # siteConfig.cors (Azure/azure-functions-host 89dc438d, WebScriptHostBuilderExtension.cs).
        text = code((INFRA / "modules/functionapp.bicep").read_text())
        cors = block(text, text.index("cors:"))
        self.assertRegex(cors, r"allowedOrigins:\s*\[\s*spaOrigin\s*\]")
        self.assertNotIn("'*'", cors, "exact origins only")
        self.assertRegex(text, r"@allowed\(\[512, 2048, 4096\]\)")

    def test_service_bus_queues(self):
        text = (INFRA / "modules/servicebus.bicep").read_text()

        def queue(name):
            m = re.search(rf"name:\s*'{re.escape(name)}'", text)
            self.assertIsNotNone(m, name)
            return block(text, m.end())

        accepted, processed = queue("order.accepted"), queue("order.processed")
        self.assertRegex(accepted, r"requiresSession:\s*true")
        self.assertRegex(processed, r"requiresSession:\s*false")
        for q in (accepted, processed):
            self.assertRegex(q, r"maxDeliveryCount:\s*maxDeliveryCount")
            self.assertRegex(q, r"deadLetteringOnMessageExpiration:\s*true")
            self.assertRegex(q, r"requiresDuplicateDetection:\s*true")
            self.assertRegex(q, r"duplicateDetectionHistoryTimeWindow:")
        self.assertRegex(text, r"param maxDeliveryCount int = 10")
        self.assertRegex(text, r"disableLocalAuth:\s*true")

    def test_sql_is_entra_only_and_redis_tls_only(self):
        sql = (INFRA / "modules/sql.bicep").read_text()
        self.assertRegex(sql, r"azureADOnlyAuthentication:\s*true")
        self.assertNotRegex(sql, r"administratorLoginPassword")
        redis = code((INFRA / "modules/redis.bicep").read_text())
        # Azure Managed Redis: Azure Cache for Redis retires (2028-09-30) and blocks new caches.
        self.assertIn("'Microsoft.Cache/redisEnterprise@", redis)
        self.assertNotIn("'Microsoft.Cache/redis@", redis)
        self.assertRegex(redis, r"clientProtocol:\s*'Encrypted'")
        self.assertRegex(redis, r"minimumTlsVersion:\s*'1\.2'")
        # One endpoint: the clients are not cluster-aware.
        self.assertRegex(redis, r"clusteringPolicy:\s*'EnterpriseCluster'")

    def test_hub_has_two_replicas_and_a_scale_rule(self):
        ca = (INFRA / "modules/containerapps.bicep").read_text()
        main = (INFRA / "main.bicep").read_text()
        self.assertRegex(main, r"@minValue\(2\)\s*\nparam hubMinReplicas int = 2")
        hub = block(ca, re.search(r"^resource hubApp ", ca, re.M).end())
        self.assertRegex(hub, r"minReplicas:\s*hubMinReplicas")
        self.assertRegex(hub, r"rules:\s*\[[\s\S]*http:\s*\{[\s\S]*concurrentRequests")


class Wiring(unittest.TestCase):
    """What `az bicep build` would reject: module parameters and outputs that don't line up."""

    def test_modules_get_the_parameters_they_declare_and_outputs_exist(self):
        main = code((INFRA / "main.bicep").read_text())
        modules = {}
        for m in re.finditer(r"^module\s+(\w+)\s+'([^']+)'\s*=\s*\{", main, re.M):
            name, path = m.group(1), INFRA / m.group(2)
            self.assertTrue(path.is_file(), path)
            body = block(main, m.end() - 1)
            params_m = re.search(r"^\s*params:\s*\{", body, re.M)
            passed = top_level_keys(block(body, params_m.end() - 1)) if params_m else set()
            mod = code(path.read_text())
            declared = dict(re.findall(r"^param\s+(\w+)\s+\w+(\s*=)?", mod, re.M))
            required = {p for p, has_default in declared.items() if not has_default}
            with self.subTest(module=name):
                self.assertEqual(sorted(passed - set(declared)), [], "passed but not declared")
                self.assertEqual(sorted(required - passed), [], "required but not passed")
            modules[name] = set(re.findall(r"^output\s+(\w+)\s", mod, re.M))
        for m in re.finditer(r"\b(\w+)\.outputs\.(\w+)", main):
            with self.subTest(ref=m.group(0)):
                self.assertIn(m.group(1), modules)
                self.assertIn(m.group(2), modules[m.group(1)])

    def test_brackets_balance(self):
        for f in BICEP:
            text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", code(f.read_text()))
            with self.subTest(file=f.name):
                for o, c in ("{}", "[]", "()"):
                    self.assertEqual(text.count(o), text.count(c), f"{o}{c} in {f.name}")


class IdentityAndSecrets(unittest.TestCase):
    def test_the_identity_has_least_privilege_role_assignments(self):
        assigned = set()
        for f in BICEP:
            text = f.read_text()
            for m in re.finditer(r"^resource\s+\w+\s+'Microsoft\.Authorization/roleAssignments@", text, re.M):
                body = block(text, m.end())
                self.assertRegex(body, r"principalId:\s*\w+", f.name)
            for var, role in re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", text, re.M):
                self.assertIn(var, text[text.index(var) + len(var):], f"{f.name}: {var} unused")
                assigned.add(role)
        self.assertEqual(sorted(set(ROLES) - assigned), [], "roles the identity needs")
        self.assertEqual(sorted(set(TOO_BROAD) & assigned), [], "roles broader than needed")
        main = (INFRA / "main.bicep").read_text()
        for module in ("monitoring", "keyVault", "storage", "serviceBus", "registry"):
            body = block(main, re.search(rf"^module\s+{module}\s", main, re.M).end())
            self.assertRegex(body, r"principalId:\s*identity\.outputs\.principalId", module)

    def test_secrets_reach_the_apps_only_as_key_vault_references(self):
        fa = (INFRA / "modules/functionapp.bicep").read_text()
        for name in ("REDIS_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING"):
            self.assertRegex(fa, rf"name:\s*'{name}',\s*value:\s*'@Microsoft\.KeyVault\(SecretUri=", name)
        ca = (INFRA / "modules/containerapps.bicep").read_text()
        self.assertRegex(ca, r"name:\s*'REDIS_URL',\s*secretRef:\s*'redis-url'")
        self.assertRegex(ca, r"name:\s*'redis-url',\s*keyVaultUrl:")
        for f in BICEP:
            text = code(f.read_text())
            with self.subTest(file=f.name):
                self.assertNotRegex(text, r"@secure\(\)\s*\nparam\s+\w+\s+\w+\s*=\s*'[^']+'", "a secure parameter with a default")
                if f.name not in ("secrets.bicep", "containerapps.bicep"):
                    self.assertNotIn("listKeys(", text, "keys are read only where they go into Key Vault")

    def test_no_parameters_file_holds_a_secret(self):
        self.assertTrue(PARAM_FILES, "at least main.bicepparam")
        for f in PARAM_FILES:
            with self.subTest(file=f.name):
                self.assertEqual(secret_findings(f.name, f.read_text()), [])

    def test_the_secret_check_catches_secrets(self):
        for text in (
            "param redisKey = 'abc'",
            "param sqlAdminPassword = 'P@ssw0rd!'",
            "param x = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc=='",
            "param x = 'Endpoint=sb://n.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v'",
            "param x = 'rediss://:s3cret@host:6380'",
            "param x = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='",
            '{"parameters": {"jwtSigningKey": {"value": "0123456789abcdef0123456789abcdef"}}}',
        ):
            with self.subTest(text=text):
                self.assertNotEqual(secret_findings("x.bicepparam", text), [])


if __name__ == "__main__":
    unittest.main()
