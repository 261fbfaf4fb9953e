"""Configuration contract: the Rust binaries' settings vs local.settings.example.json,
docker-compose.yml and the Bicep app settings / container env."""

import json
import re
import unittest

import yaml

import contract
import settings_scan
from settings_scan import ROOT

SCAN = settings_scan.scan()


def without(target: contract.Target, text: str, name: str) -> str:
    """An in-memory copy of the file with one setting removed."""
    if target.file.endswith(".json"):
        data = json.loads(text)
        del data["Values"][name]
        return json.dumps(data)
    if target.file.endswith(".yml"):
        data = yaml.safe_load(text)  # anchors and merge keys resolved: each service its own dict
        service = {"docker-compose.yml functions": "functions"}.get(target.label)
        services = [service] if service else ["hub-1", "hub-2"]
        for s in services:
            env = dict(data["services"][s]["environment"])
            del env[name]
            data["services"][s]["environment"] = env
        return yaml.safe_dump(data)
    lines = text.splitlines(keepends=True)
    kept = [ln for ln in lines if not re.search(rf"\bname:\s*'{re.escape(name)}'", ln)]
    assert len(kept) == len(lines) - 1, f"{name} is not on exactly one line of {target.file}"
    return "".join(kept)


def with_extra(target: contract.Target, text: str, name: str) -> str:
    if target.file.endswith(".json"):
        data = json.loads(text)
        data["Values"][name] = "x"
        return json.dumps(data)
    if target.file.endswith(".yml"):
        data = yaml.safe_load(text)
        for s in data["services"]:
            if isinstance(data["services"][s].get("environment"), dict):
                data["services"][s]["environment"] = {**data["services"][s]["environment"], name: "x"}
        return yaml.safe_dump(data)
    block = "appSettings: [" if "functionapp" in target.file else "env: ["
    # Insert right after the (last, for the hub: the one inside hubApp) block opening.
    idx = text.rindex(block) + len(block)
    return text[:idx] + f"\n            {{ name: '{name}', value: 'x' }}" + text[idx:]


class Scanner(unittest.TestCase):
    def test_every_read_is_understood(self):
        self.assertEqual(SCAN.errors, [], "the scanner met reads it cannot resolve; teach settings_scan.py")

    def test_finds_the_known_settings(self):
        handler, hub, host = (SCAN.names_for(b) for b in ("handler", "hub", "functions-host"))
        self.assertTrue({"AUTH_MODE", "JWT_ISSUER", "SQL_PROVIDER", "QUEUE_TRANSPORT", "REDIS_URL",
                         "FUNCTIONS_CUSTOMHANDLER_PORT", "RUST_LOG", "IDENTITY_ENDPOINT"} <= handler)
        self.assertTrue({"HUB_PORT", "HUB_CORS_ORIGINS", "AUTH_MODE", "REDIS_URL", "SQL_PROVIDER"} <= hub)
        self.assertTrue({"APP_ROOT", "HOST_MODE", "HANDLER_BIN", "HOST_WORKERS", "PORT"} <= host)
        self.assertNotIn("HUB_PORT", handler)
        self.assertNotIn("QUEUE_TRANSPORT", hub)
        for binary in ("handler", "hub"):
            self.assertTrue({"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"} <= SCAN.names_for(binary), binary)

    def test_every_workspace_member_is_scanned_or_declared_not_deployed(self):
        for member in settings_scan.workspace_members():
            with self.subTest(member=member):
                self.assertTrue(f"{member}/src" in settings_scan.SOURCES or member in settings_scan.NOT_DEPLOYED)

    def scan_snippet(self, code):
        result = settings_scan.ScanResult()
        settings_scan.scan_text("functions/src/x.rs", code, settings_scan.env_reader_methods(), result)
        return result

    def test_reads_literals_consts_and_forwarding_closures(self):
        r = self.scan_snippet('''
            const NAME: &str = "FROM_CONST";
            fn f(get: &dyn Fn(&str) -> Option<String>) {
                let env = Env::new(get);
                env.string("A_STRING");
                env.parse::<u16>("A_PARSE", 1);
                env.seconds(NAME, 1, 1..=2);
                let var = |name: &str| std::env::var(name).ok();
                let number = |name: &str, d: u64| { let x = 1; var(name).map(|v| v.len()) };
                var("FROM_CLOSURE");
                number("FROM_NESTED", 3);
                std::env::var_os("FROM_VAR_OS");
                let s = "env.string(\\"IN_A_STRING\\")"; // env.string("IN_A_COMMENT")
            }
            #[cfg(test)]
            mod tests { fn t() { let env = Env::new(&|_| None); env.string("TEST_ONLY"); } }
        ''')
        self.assertEqual(r.errors, [])
        self.assertEqual({x.name for x in r.reads},
                         {"A_STRING", "A_PARSE", "FROM_CONST", "FROM_CLOSURE", "FROM_NESTED", "FROM_VAR_OS"})

    def test_fails_loudly_on_what_it_cannot_resolve(self):
        for code in (
            'fn f(env: &Env<\'_>, n: &str) { env.string(n); }',
            'fn f() { let n = "X"; std::env::var(n); }',
            'fn f() { for (k, v) in std::env::vars() {} }',
            'fn f(n: &str) { let var = |name: &str| std::env::var(name).ok(); var(n); }',
            'fn f() { let e = Some(Env::new(&|_| None)); }',
        ):
            with self.subTest(code=code):
                self.assertNotEqual(self.scan_snippet(code).errors, [])


class Contract(unittest.TestCase):
    def test_every_file_sets_what_its_binary_reads_and_nothing_else(self):
        self.assertEqual(contract.check_all(SCAN), [])

    def test_removing_any_one_setting_is_reported(self):
        for t in contract.TARGETS:
            text = (ROOT / t.file).read_text()
            reads = contract.read_by(t.binary, SCAN)
            names = sorted(t.extract(text) & reads)
            self.assertTrue(names, t.label)
            for name in (names[0], names[len(names) // 2], names[-1]):
                with self.subTest(target=t.label, removed=name):
                    problems = contract.check(t, without(t, text, name), reads)
                    self.assertTrue(any(f" {name} is read by" in p for p in problems), problems)

    def test_a_setting_nothing_reads_is_reported(self):
        for t in contract.TARGETS:
            with self.subTest(target=t.label):
                text = (ROOT / t.file).read_text()
                problems = contract.check(t, with_extra(t, text, "NOTHING_READS_THIS"), contract.read_by(t.binary, SCAN))
                self.assertTrue(any("NOTHING_READS_THIS is set but nothing reads it" in p for p in problems), problems)

    def test_a_setting_that_must_not_be_set_is_reported(self):
        t = next(t for t in contract.TARGETS if t.label == "bicep function app")
        text = (ROOT / t.file).read_text()
        problems = contract.check(t, with_extra(t, text, "JWT_SIGNING_KEY"), contract.read_by(t.binary, SCAN))
        self.assertTrue(any("JWT_SIGNING_KEY must not be set here" in p for p in problems), problems)


if __name__ == "__main__":
    unittest.main()
