"""The packaged function app (scripts/package): folder and zip layout, the handler binary, and the
RabbitMQ-shim profile's bindings. Packs an existing handler binary (never runs cargo):
HANDLER_BIN, else target/debug/handler, else target/release/handler."""

import json
import os
import stat
import subprocess
import tempfile
import unittest
import zipfile
from pathlib import Path

from settings_scan import ROOT

PACKAGE = ROOT / "scripts" / "package"


def handler_bin() -> Path:
    for candidate in (os.environ.get("HANDLER_BIN"), "target/debug/handler", "target/release/handler"):
        if candidate and (ROOT / candidate).is_file():
            return ROOT / candidate
    raise unittest.SkipTest("no handler binary: build one (cargo build -p orders-functions --bin handler) or set HANDLER_BIN")


def elf_x86_64_executable(data: bytes) -> bool:
    return (
        data[:4] == b"\x7fELF"
        and data[4] == 2  # 64-bit
        and data[5] == 1  # little-endian
        and int.from_bytes(data[16:18], "little") in (2, 3)  # ET_EXEC or ET_DYN (PIE)
        and int.from_bytes(data[18:20], "little") == 0x3E  # x86-64
    )


def functions_in_repo() -> dict[str, dict]:
    fdir = ROOT / "functions"
    return {
        d.name: json.loads((d / "function.json").read_text())
        for d in sorted(fdir.iterdir())
        if (d / "function.json").is_file()
    }


def executable_name() -> str:
    return json.loads((ROOT / "host.json").read_text())["customHandler"]["description"]["defaultExecutablePath"]


class Packaged(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.handler = handler_bin()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name)
        for profile in ("servicebus", "rabbitmq"):
            run = subprocess.run(
                [str(PACKAGE), "--handler", str(cls.handler), "--out", str(cls.out), "--profile", profile],
                cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PACKAGE_ZIP_LEVEL": "1"},
            )
            if run.returncode != 0:
                raise AssertionError(f"scripts/package --profile {profile} failed:\n{run.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_folder(self, app: Path):
        self.assertEqual(json.loads((app / "host.json").read_text()), json.loads((ROOT / "host.json").read_text()))
        exe = app / executable_name()
        self.assertTrue(exe.is_file(), exe)
        self.assertTrue(os.stat(exe).st_mode & stat.S_IXUSR, f"{exe} is not executable")
        self.assertTrue(elf_x86_64_executable(exe.read_bytes()[:20]), f"{exe} is not a Linux x86-64 ELF executable")
        for name in functions_in_repo():
            self.assertTrue((app / name / "function.json").is_file(), f"{name}/function.json missing")
        dirs = {p.name for p in app.iterdir() if p.is_dir()}
        self.assertEqual(dirs, set(functions_in_repo()), "one folder per function, nothing else")

    def check_zip(self, path: Path, app: Path):
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            self.assertIn("host.json", names, "host.json must be at the zip's root")
            self.assertIn(executable_name(), names)
            for fn in functions_in_repo():
                self.assertIn(f"{fn}/function.json", names)
            info = z.getinfo(executable_name())
            self.assertEqual((info.external_attr >> 16) & 0o777, 0o755, "the handler must stay executable in the zip")
            self.assertTrue(elf_x86_64_executable(z.read(executable_name())[:20]))
            on_disk = {str(p.relative_to(app)) for p in app.rglob("*") if p.is_file()}
            self.assertEqual(names, on_disk)

    def test_servicebus_app_folder_and_zip(self):
        app = self.out / "functionapp"
        self.check_folder(app)
        self.check_zip(self.out / "functionapp.zip", app)
        for name, spec in functions_in_repo().items():
            self.assertEqual(json.loads((app / name / "function.json").read_text()), spec, name)

    def test_rabbitmq_profile_rewrites_the_service_bus_bindings(self):
        app = self.out / "functionapp-rabbitmq"
        self.check_folder(app)
        self.check_zip(self.out / "functionapp-rabbitmq.zip", app)
        rewritten = 0
        for name, spec in functions_in_repo().items():
            got = json.loads((app / name / "function.json").read_text())["bindings"]
            self.assertEqual(len(got), len(spec["bindings"]))
            for before, after in zip(spec["bindings"], got):
                self.assertEqual((before["name"], before["direction"]), (after["name"], after["direction"]))
                if before["type"] in ("serviceBusTrigger", "serviceBus"):
                    rewritten += 1
                    want = "rabbitMQTrigger" if before["type"] == "serviceBusTrigger" else "rabbitMQ"
                    self.assertEqual(after["type"], want)
                    self.assertEqual(after["queueName"], before["queueName"] + ".s0")
                    self.assertEqual(after["connectionStringSetting"], "RabbitMQConnection")
                    self.assertFalse({"connection", "isSessionsEnabled"} & set(after))
                else:
                    self.assertEqual(after, before)
        self.assertGreaterEqual(rewritten, 3, "OrderProcess (trigger + output) and OrderNotify (trigger)")
        from test_schemas import errors, validator

        v = validator("function.json")
        for name in functions_in_repo():
            with self.subTest(function=name):
                self.assertEqual(errors(v, json.loads((app / name / "function.json").read_text())), [])

    def test_refuses_a_handler_that_is_not_linux_x86_64(self):
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run([str(PACKAGE), "--handler", str(ROOT / "host.json"), "--out", out],
                                 cwd=ROOT, capture_output=True, text=True)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("not an ELF", run.stderr)


if __name__ == "__main__":
    unittest.main()
