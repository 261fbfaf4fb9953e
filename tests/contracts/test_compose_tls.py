"""docker-compose's front end terminates TLS as `scripts/run --https` does: one development
certificate for localhost and 127.0.0.1, kept as .data/tls/{cert,key}.pem, served by nginx on
https://localhost:8443 for the shop, the API and the hubs (wss://). Read from the files, and the
certificate command is run here with the machine's openssl (no Docker needed)."""

import re
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

from settings_scan import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
NGINX = (ROOT / "deploy" / "web" / "nginx.conf").read_text()
# Where the host keeps its certificate (host/src/tls.rs: DATA_DIR/tls, DATA_DIR defaults to .data).
HOST_TLS = (ROOT / "host" / "src" / "tls.rs").read_text()


def mount(service: str, target: str) -> str:
    """The host path mounted at `target` in `service`."""
    for volume in SERVICES[service]["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return source
    raise AssertionError(f"{service} mounts nothing at {target}")


class ComposeTls(unittest.TestCase):
    def test_nginx_serves_https_with_the_mounted_certificate(self):
        self.assertIn("8443:443", SERVICES["web"]["ports"])
        self.assertRegex(NGINX, r"listen 443 ssl;")
        tls_dir = mount("web", "/etc/nginx/tls")
        self.assertEqual(tls_dir, mount("web-cert", "/certs"), "nginx reads what web-cert writes")
        self.assertEqual(tls_dir, "./.data/tls", "where scripts/run --https keeps its certificate")
        for name in ("cert.pem", "key.pem"):
            self.assertIn(f'"{name}"', HOST_TLS, f"the host's file name is {name}")
        self.assertIn("ssl_certificate /etc/nginx/tls/cert.pem;", NGINX)
        self.assertIn("ssl_certificate_key /etc/nginx/tls/key.pem;", NGINX)

    def test_the_front_end_waits_for_the_certificate(self):
        condition = SERVICES["web"]["depends_on"]["web-cert"]["condition"]
        self.assertEqual(condition, "service_completed_successfully")

    def test_the_hubs_and_the_api_are_proxied_over_the_same_tls_server(self):
        # One server block: /api/ and /hubs/ (with the WebSocket upgrade) on both listeners.
        self.assertEqual(NGINX.count("server {"), 1)
        self.assertIn("location /hubs/", NGINX)
        self.assertIn("proxy_set_header Upgrade $http_upgrade;", NGINX)
        for name in ("hub-1", "hub-2"):
            origins = SERVICES[name]["environment"]["HUB_CORS_ORIGINS"].split(",")
            self.assertIn("https://localhost:8443", origins, name)
        self.assertIn("https://localhost:8443", SERVICES["functions"]["environment"]["API_CORS_ORIGINS"].split(","))

    def test_the_certificate_command_makes_a_certificate_for_localhost_once(self):
        script = SERVICES["web-cert"]["command"][0]
        with tempfile.TemporaryDirectory() as certs:
            run = lambda: subprocess.run(
                ["sh", "-ec", script.replace("/certs/", f"{certs}/")], check=True, timeout=60
            )
            run()
            cert = Path(certs, "cert.pem")
            text = subprocess.run(
                ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "subjectAltName"],
                check=True, capture_output=True, text=True,
            ).stdout
            self.assertIn("DNS:localhost", text)
            self.assertRegex(text, r"IP Address:127\.0\.0\.1")
            key = subprocess.run(
                ["openssl", "pkey", "-in", str(Path(certs, "key.pem")), "-noout", "-text"],
                check=True, capture_output=True, text=True,
            ).stdout
            self.assertRegex(key, re.compile(r"P-256|prime256v1"))
            # Kept: a second run leaves the certificate (and the browser's exception) alone.
            before = cert.read_bytes()
            run()
            self.assertEqual(cert.read_bytes(), before)


if __name__ == "__main__":
    unittest.main()
