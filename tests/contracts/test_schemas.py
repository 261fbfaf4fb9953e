"""host.json, every function.json and docker-compose.yml against their published JSON schemas
(stored in schemas/, see schemas/README.md)."""

import copy
import json
import unittest

import jsonschema
import yaml

from settings_scan import ROOT

SCHEMAS = ROOT / "tests" / "contracts" / "schemas"


def schema(name):
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


DRAFTS = {
    "draft-04": jsonschema.Draft4Validator,
    "draft-07": jsonschema.Draft7Validator,
    "draft/2019-09": jsonschema.Draft201909Validator,
    "draft/2020-12": jsonschema.Draft202012Validator,
}


def validator(name):
    """The validator of the schema's own draft (named by its $schema, with or without '#')."""
    s = schema(name)
    cls = next((c for d, c in DRAFTS.items() if d in s.get("$schema", "")), None)
    if cls is None:
        raise AssertionError(f"{name}: unknown $schema {s.get('$schema')!r}")
    cls.check_schema(s)
    return cls(s)


def errors(v, instance):
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in v.iter_errors(instance))


# What our host.json uses that this schema version rejects, each with why it stays.
KNOWN_DEVIATIONS = {
    ("customHandler", "enableProxyingHttpRequest"):
        "documented by Microsoft (custom handlers, HTTP-only functions, 11/2025) as the successor of "
        "enableForwardingHttpRequest; the SchemaStore schema predates it",
}


def without(doc, path):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


class Stored(unittest.TestCase):
    def test_stored_schemas_are_the_recorded_published_files(self):
        sources = json.loads((SCHEMAS / "sources.json").read_text())
        for name, src in sources.items():
            with self.subTest(schema=name):
                text = (SCHEMAS / name).read_text(encoding="utf-8")
                self.assertEqual(len(text), src["chars"], "edited or truncated copy")
                validator(name)  # a valid schema for its own draft


class HostJson(unittest.TestCase):
    def setUp(self):
        self.v = validator("host.json")
        self.doc = json.loads((ROOT / "host.json").read_text())

    def test_host_json_is_valid_apart_from_the_known_deviations(self):
        doc = self.doc
        for path in KNOWN_DEVIATIONS:
            doc = without(doc, path)
        self.assertEqual(errors(self.v, doc), [])

    def test_each_known_deviation_is_still_present_and_still_rejected(self):
        for path, why in KNOWN_DEVIATIONS.items():
            with self.subTest(path=".".join(path)):
                doc = self.doc
                for other in KNOWN_DEVIATIONS:
                    if other != path:
                        doc = without(doc, other)
                self.assertFalse(self.v.is_valid(doc), f"{'.'.join(path)} is accepted now: drop it from KNOWN_DEVIATIONS")

    def test_the_schema_catches_mistakes(self):
        bad = copy.deepcopy(self.doc)
        bad["extensions"]["serviceBus"]["maxConcurrentSessions"] = "eight"
        for path in KNOWN_DEVIATIONS:
            bad = without(bad, path)
        self.assertFalse(self.v.is_valid(bad))


class FunctionJson(unittest.TestCase):
    def test_every_function_json_is_valid(self):
        v = validator("function.json")
        files = sorted((ROOT / "functions").glob("*/function.json"))
        self.assertGreaterEqual(len(files), 4)
        for f in files:
            with self.subTest(function=f.parent.name):
                self.assertEqual(errors(v, json.loads(f.read_text())), [])

    def test_the_schema_catches_mistakes(self):
        v = validator("function.json")
        spec = json.loads((ROOT / "functions/Api/function.json").read_text())
        spec["bindings"][0]["authLevel"] = "everyone"
        self.assertFalse(v.is_valid(spec))
        spec = json.loads((ROOT / "functions/OrderNotify/function.json").read_text())
        del spec["bindings"][0]["direction"]
        self.assertFalse(v.is_valid(spec))


class Compose(unittest.TestCase):
    def test_docker_compose_is_valid(self):
        v = validator("compose-spec.json")
        doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        self.assertEqual(errors(v, doc), [])

    def test_start_order_waits_for_health(self):
        doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        services = doc["services"]
        for name in ("rabbitmq", "redis", "sqlserver", "azurite", "functions", "hub-1", "hub-2", "web"):
            self.assertIn("healthcheck", services[name], name)
        self.assertEqual(services["rabbitmq-init"]["depends_on"]["rabbitmq"]["condition"], "service_healthy")
        self.assertEqual(services["functions"]["depends_on"]["rabbitmq-init"]["condition"], "service_completed_successfully")
        self.assertEqual(services["web"]["depends_on"]["functions"]["condition"], "service_healthy")
        for s in ("functions", "hub-1", "hub-2"):
            self.assertEqual(services[s]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel-collector:4318")
        self.assertIn("16686:16686", services["jaeger"]["ports"])
        self.assertIn("15672:15672", services["rabbitmq"]["ports"])

    def test_no_password_is_committed(self):
        text = (ROOT / "docker-compose.yml").read_text()
        doc = yaml.safe_load(text)
        for name, svc in doc["services"].items():
            for key, value in (svc.get("environment") or {}).items():
                if any(w in key.upper() for w in ("PASS", "SECRET", "SIGNING_KEY")):
                    with self.subTest(service=name, setting=key):
                        self.assertRegex(str(value), r"^\$\{\w+:\?", "passwords come from .env via ${VAR:?}")

    def test_the_schema_catches_mistakes(self):
        v = validator("compose-spec.json")
        doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        doc["services"]["functions"]["depends_on"]["redis"]["condition"] = "when_ready"
        self.assertFalse(v.is_valid(doc))


if __name__ == "__main__":
    unittest.main()
