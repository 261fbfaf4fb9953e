// Helpers for the browser tests: the real local Functions host serving the built SPA, the API for
// cross-checks, Debian's chromium driven by playwright-core, and the build-size figures.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const https = require("node:https");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const HOST_BIN = process.env.HOST_BIN || path.join(ROOT, "target", "debug", "functions-host");
const WEB_DIST = path.join(ROOT, "web", "dist");
const SCREENSHOTS = path.join(ROOT, "artifacts", "screenshots");
const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function requireDist() {
  const index = path.join(WEB_DIST, "index.html");
  if (!fs.existsSync(index)) {
    throw new Error(
      `The built SPA is missing (${index}). Build it first: (cd web && npm ci && npm run build)`,
    );
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/**
 * The shop under test: $SHOP_URL when set (an already running host or `npm run dev`), else the
 * real functions-host spawned from the repo root in the embedded mode with a fresh DATA_DIR,
 * serving web/dist at `/`. `restart()` stops it and starts it again on the same port and data.
 */
async function startShop(env = {}) {
  if (process.env.SHOP_URL) {
    const url = process.env.SHOP_URL.replace(/\/+$/, "");
    await waitHealthy(url, 10_000);
    return { url, external: true, dataDir: null, stop: async () => {}, restart: null, log: () => "" };
  }
  requireDist();
  if (!fs.existsSync(HOST_BIN)) {
    throw new Error(`${HOST_BIN} does not exist; build it (cargo build -p functions-host) or set HOST_BIN`);
  }
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "browser-tests-data-"));
  // LOCAL_HTTPS: the host's development certificate names localhost.
  const url = env.LOCAL_HTTPS === "true" ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  let log = "";
  let host;
  try {
    host = await spawnHost(url, port, dataDir, env, (d) => {
      log += d;
      if (log.length > 200_000) log = log.slice(-100_000);
    });
  } catch (e) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const stopHost = async () => {
    const { child, exited } = host;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url,
    external: false,
    dataDir,
    log: () => log,
    /** Stops the host; `during()` runs while it is down; then it starts again (same port, same data). */
    async restart(during = async () => {}) {
      await stopHost();
      await during();
      host = await spawnHost(url, port, dataDir, env, (d) => (log += d));
    },
    async stop() {
      await stopHost();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function spawnHost(url, port, dataDir, env, onOutput) {
  const child = spawn(HOST_BIN, [], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME || os.tmpdir(),
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      WEB_DIST,
      AUTH_MODE: "dev",
      RUST_LOG: process.env.RUST_LOG || "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (d) => {
    output += d;
    onOutput(d);
    if (process.env.HOST_LOG) process.stderr.write(d);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  try {
    await Promise.race([
      waitHealthy(url, 60_000, dataDir),
      exited.then(({ code, signal }) => {
        throw new Error(`functions-host exited (${code ?? signal}) before it was healthy:\n${output}`);
      }),
    ]);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return { child, exited };
}

async function waitHealthy(url, ms, dataDir) {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const status = url.startsWith("https:")
        ? await httpsStatus(`${url}/api/health`, path.join(dataDir, "tls", "cert.pem"))
        : (await fetch(`${url}/api/health`)).status;
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`${url}/api/health did not answer 200 within ${ms} ms (${last})`);
}

/** GET `url` over HTTPS, trusting only the certificate in `certFile` (verified, not ignored). */
function httpsStatus(url, certFile) {
  const ca = fs.readFileSync(certFile);
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on("error", reject);
  });
}

// ---- the API, for cross-checks ---------------------------------------------------------------

async function devToken(url, userId) {
  const res = await fetch(`${url}/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`dev token: HTTP ${res.status}`);
  return (await res.json()).accessToken;
}

async function api(url, token, method, p) {
  const res = await fetch(`${url}${p}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function ordersOf(url, token) {
  const { status, body } = await api(url, token, "GET", "/api/orders?size=100");
  if (status !== 200) throw new Error(`GET /api/orders: HTTP ${status}`);
  return body;
}

// ---- the browser -----------------------------------------------------------------------------

async function launchBrowser() {
  const executablePath = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) {
    throw new Error(`${executablePath} not found: apt-get install -y chromium, or set CHROMIUM_BIN`);
  }
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** Collects page errors and console errors, so a test can show them when it fails. */
function watch(page, name) {
  const problems = [];
  page.on("pageerror", (e) => problems.push(`[${name}] page error at ${page.url()}: ${e.stack || e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`[${name}] console at ${page.url()}: ${m.text()} ${m.location()?.url ?? ""}`);
  });
  return problems;
}

async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0)); // keeps the sticky header at the top of the shot
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A page in a fresh context whose config.json switches the SPA to OIDC sign-in at `authority`.
 *  The shop's service worker is blocked: requests it makes (config.json once it controls the page,
 *  e.g. after the provider redirects back) never reach `page.route`. */
async function oidcPage(browser, authority) {
  const ctx = await browser.newContext({ serviceWorkers: "block" });
  const page = await ctx.newPage();
  await page.route("**/config.json", (route) => route.fulfill({
    contentType: "application/json",
    body: JSON.stringify({
      apiBaseUrl: "", hubUrl: "/hubs/order-status",
      auth: { mode: "oidc", authority, clientId: "contoso-shop-spa", scope: "openid profile orders" },
    }),
  }));
  return { ctx, page };
}

// ---- figures ---------------------------------------------------------------------------------

/** JS + CSS in web/dist/assets: raw and gzip bytes. */
function distSize() {
  const dir = path.join(WEB_DIST, "assets");
  let raw = 0;
  let gzip = 0;
  const files = [];
  for (const f of fs.readdirSync(dir)) {
    if (!/\.(js|css)$/.test(f)) continue;
    const buf = fs.readFileSync(path.join(dir, f));
    const gz = zlib.gzipSync(buf, { level: 9 }).length;
    raw += buf.length;
    gzip += gz;
    files.push({ file: f, raw: buf.length, gzip: gz });
  }
  return { raw, gzip, files };
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { n: sorted.length, median, min: sorted[0], max: sorted[sorted.length - 1] };
}

module.exports = {
  ROOT, WEB_DIST, SCREENSHOTS, sleep, requireDist, freePort, startShop, devToken, api, ordersOf,
  httpsStatus, launchBrowser, oidcPage, watch, screenshot, distSize, stats,
};
