// The chaos soak: the servers mode (two functions-host replicas, each with its handler child, on
// RabbitMQ and Redis; two signalr-hub replicas; one SQLite store) under a steady load of orders
// from many users, each with a connected official @microsoft/signalr client, while faults are
// injected in turn. At the end a ledger proves, for every order answered 202: persisted exactly
// once, priced exactly, COMPLETED, listed only for its owner, its owner's client got COMPLETED
// (live, or by reading it after a reconnect), and no client ever got another user's notification.
// Orders refused with 503 are counted apart and must never be half-accepted (persisted anyway).
//
// Run by scripts/soak, which starts the servers and sets REDIS_URL, RABBITMQ_URL and the
// REDIS_TEST_DIR / RABBITMQ_TEST_DIR the restart faults use. Prints each fault's recovery time
// and the counts; exits 1 if any check fails.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const signalR = require("@microsoft/signalr");

const ROOT = path.resolve(__dirname, "..", "..");
const SECONDS = Number(process.env.SOAK_SECONDS || 600);
const USERS = Number(process.env.SOAK_USERS || 20);
const RATE = Number(process.env.SOAK_RATE || 20); // orders per second, all users together
const KEY = "soak-signing-key-that-is-long-enough-0123456789";
const RUN = crypto.randomBytes(4).toString("hex");
const DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "soak-"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
const log = (line) => console.log(`[soak ${elapsed()}s] ${line}`);

const BASE_ENV = {
  PATH: process.env.PATH,
  HOME: process.env.HOME || os.tmpdir(),
  DATA_DIR,
  JWT_SIGNING_KEY: KEY,
  REDIS_URL: required("REDIS_URL"),
  FANOUT_CHANNEL_PREFIX: `soak-${RUN}:`,
  RUST_LOG: process.env.SOAK_RUST_LOG || "warn",
};

function required(name) {
  if (!process.env[name]) throw new Error(`${name} is not set: run scripts/soak`);
  return process.env[name];
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

/** A binary of target/debug kept running on its port; its output's tail is kept for failures. */
class Proc {
  constructor(name, binary, env, port) {
    Object.assign(this, { name, binary, env, port, output: "" });
  }

  async start() {
    this.child = spawn(path.join(ROOT, "target", "debug", this.binary), [], {
      cwd: ROOT,
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d) => {
      this.output = (this.output + d).slice(-20_000);
    };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    const deadline = Date.now() + 60_000;
    while (!(await this.healthy())) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not healthy within 60 s:\n${this.output}`);
      await sleep(100);
    }
  }

  async healthy() {
    const probe = this.binary === "signalr-hub" ? "/hubs/health" : "/api/health";
    try {
      return (await fetch(`http://127.0.0.1:${this.port}${probe}`)).status === 200;
    } catch {
      return false;
    }
  }

  signal(sig) {
    process.kill(this.child.pid, sig);
  }

  /** The handler child of a functions-host. */
  handlerPid() {
    const out = execFileSync("pgrep", ["-P", String(this.child.pid)], { encoding: "utf8" });
    return Number(out.trim().split("\n")[0]);
  }

  async kill() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.signal("SIGKILL");
    await exited;
  }
}

// ---- the system ------------------------------------------------------------------------------

async function startSystem() {
  const hosts = [];
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    hosts.push(
      new Proc(`host${i}`, "functions-host", {
        ...BASE_ENV,
        PORT: String(port),
        APP_ROOT: ROOT,
        HOST_MODE: "process",
        HANDLER_BIN: path.join(ROOT, "target", "debug", "handler"),
        QUEUE_TRANSPORT: "rabbitmq",
        RABBITMQ_URL: required("RABBITMQ_URL"),
        QUEUE_NAMESPACE: `soak-${RUN}-`,
      }, port),
    );
  }
  const hubs = [];
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    hubs.push(new Proc(`hub${i}`, "signalr-hub", { ...BASE_ENV, HUB_PORT: String(port) }, port));
  }
  for (const p of [...hosts, ...hubs]) await p.start();
  return { hosts, hubs };
}

// ---- load and ledger -------------------------------------------------------------------------

const ledger = new Map(); // cid -> { user, key, cents }
const byKey = new Map(); // user/key -> Set of cids answered
const counts = { accepted: 0, refused: 0, doubleClicks: 0, retries: 0 };
const received = new Map(); // user -> Map cid -> Set of statuses

async function post(base, token, key, body) {
  const res = await fetch(`${base}/api/orders`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Answers after which a shop tries again with the same key: unavailable, or (409) the first
 * request with this key is still running, e.g. after a client-side timeout. */
const RETRY_ON = [409, 502, 503];

/** One order as a shop would place it: retried with the same key on 503, 409 or a network error. */
async function placeOrder(system, user, catalog, { doubleClick = false } = {}) {
  const key = crypto.randomUUID();
  const lines = pickLines(catalog);
  const body = JSON.stringify({ items: lines.map(({ productId, quantity }) => ({ productId, quantity })) });
  const cents = lines.reduce((sum, l) => sum + l.cents * l.quantity, 0);
  for (let attempt = 1; attempt <= 8; attempt++) {
    const base = `http://127.0.0.1:${system.hosts[crypto.randomInt(2)].port}`;
    const tries = doubleClick && attempt === 1 ? 2 : 1;
    if (tries === 2) counts.doubleClicks++;
    if (attempt > 1) counts.retries++;
    const answers = await Promise.allSettled(
      Array.from({ length: tries }, () => post(base, user.token, key, body)),
    );
    const ok = answers.filter((a) => a.status === "fulfilled" && a.value.status === 202).map((a) => a.value.body);
    if (ok.length > 0) {
      const cids = byKey.get(`${user.name}/${key}`) ?? new Set();
      for (const a of ok) cids.add(a.correlationId);
      byKey.set(`${user.name}/${key}`, cids);
      for (const cid of cids) ledger.set(cid, { user: user.name, key, cents });
      counts.accepted++;
      return [...cids][0];
    }
    const bad = answers.find((a) => a.status === "fulfilled" && !RETRY_ON.includes(a.value.status));
    if (bad) throw new Error(`POST /api/orders answered ${bad.value.status}: ${JSON.stringify(bad.value.body)}`);
    await sleep(500 * attempt);
  }
  counts.refused++;
  return null;
}

function pickLines(catalog) {
  const n = 1 + crypto.randomInt(3);
  const picked = new Map();
  while (picked.size < n) {
    const p = catalog[crypto.randomInt(catalog.length)];
    picked.set(p.productId, { productId: p.productId, cents: p.finalPriceCents, quantity: 1 + crypto.randomInt(3) });
  }
  return [...picked.values()];
}

async function connectClient(system, user, i) {
  const hub = system.hubs[i % system.hubs.length];
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`http://127.0.0.1:${hub.port}/hubs/order-status`, { accessTokenFactory: () => user.token })
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: () => 500 })
    .configureLogging(signalR.LogLevel.None)
    .build();
  received.set(user.name, new Map());
  connection.on("Notification", (n) => {
    const seen = received.get(user.name);
    if (!seen.has(n.correlationId)) seen.set(n.correlationId, new Set());
    seen.get(n.correlationId).add(n.status);
  });
  // Automatic reconnect gives up when the hub stays away; start again until stopped.
  connection.onclose(async () => {
    while (!user.stopping) {
      try {
        await connection.start();
        return;
      } catch {
        await sleep(500);
      }
    }
  });
  await connection.start();
  user.connection = connection;
}

// ---- faults ----------------------------------------------------------------------------------

function servers(script, verb) {
  execFileSync("bash", [path.join(ROOT, "tests", "servers", script), verb], { stdio: ["ignore", "ignore", "pipe"] });
}

const FAULTS = [
  ["SIGKILL a handler", async ({ hosts }) => process.kill(hosts[0].handlerPid(), "SIGKILL")],
  ["SIGKILL a host replica", async ({ hosts }) => {
    await hosts[1].kill();
    await sleep(1000);
    await hosts[1].start();
  }],
  ["restart redis-server", async () => servers("redis.sh", "restart")],
  ["restart rabbitmq-server", async () => servers("rabbitmq.sh", "restart")],
  ["restart a hub replica", async ({ hubs }) => {
    await hubs[0].kill();
    await sleep(1000);
    await hubs[0].start();
  }],
  ["SIGSTOP a replica for 8 s", async ({ hosts }) => {
    const pids = [hosts[0].child.pid, hosts[0].handlerPid()];
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    await sleep(8000);
    for (const pid of pids) process.kill(pid, "SIGCONT");
  }],
];

/** Time from the fault until an order placed after it is COMPLETED. */
async function recovery(system, probe, catalog, faultAt) {
  const cid = await placeOrder(system, probe, catalog);
  if (!cid) return null;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const base = `http://127.0.0.1:${system.hosts[crypto.randomInt(2)].port}`;
    const res = await fetch(`${base}/api/orders/${cid}`, { headers: { authorization: `Bearer ${probe.token}` } }).catch(() => null);
    if (res?.status === 200 && (await res.json()).status === "COMPLETED") return (Date.now() - faultAt) / 1000;
    await sleep(100);
  }
  return null;
}

// ---- the checks ------------------------------------------------------------------------------

function persisted() {
  const script =
    "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(json.dumps(c.execute(" +
    "'SELECT o.correlation_id, c.external_id, o.total_cents, o.status FROM orders o JOIN customers c ON c.id = o.customer_id'" +
    ").fetchall()))";
  return JSON.parse(execFileSync("python3", ["-c", script, path.join(DATA_DIR, "orders.db")], { encoding: "utf8" }));
}

async function listed(system, user) {
  const cids = [];
  for (let offset = 0; ; offset += 100) {
    const base = `http://127.0.0.1:${system.hosts[0].port}`;
    const res = await fetch(`${base}/api/orders?offset=${offset}&size=100`, { headers: { authorization: `Bearer ${user.token}` } });
    const page = await res.json();
    cids.push(...page.items.map((o) => o.correlationId));
    if (offset + 100 >= page.total) return cids;
  }
}

async function statusOf(system, user, cid) {
  const res = await fetch(`http://127.0.0.1:${system.hosts[0].port}/api/orders/${cid}`, {
    headers: { authorization: `Bearer ${user.token}` },
  });
  return res.status === 200 ? (await res.json()).status : `HTTP ${res.status}`;
}

async function drained(system, users) {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const rows = persisted();
    if (rows.length >= ledger.size) return;
    await sleep(500);
  }
  log(`not drained: ${persisted().length} of ${ledger.size} persisted after 180 s`);
}

async function check(system, users) {
  const rows = persisted();
  const rowsByCid = new Map();
  for (const [cid, owner, cents, status] of rows) {
    rowsByCid.set(cid, [...(rowsByCid.get(cid) ?? []), { owner, cents, status }]);
  }
  const result = { lost: 0, duplicated: 0, mispriced: 0, notCompleted: 0, misowned: 0, unlisted: 0, cross_listed: 0,
    halfAccepted: 0, notifiedLive: 0, readAfterReconnect: 0, unconfirmed: 0 };
  for (const cids of byKey.values()) if (cids.size > 1) result.duplicated += cids.size - 1;
  for (const [cid, entry] of ledger) {
    const found = rowsByCid.get(cid) ?? [];
    if (found.length === 0) result.lost++;
    if (found.length > 1) result.duplicated += found.length - 1;
    for (const row of found) {
      if (row.cents !== entry.cents) result.mispriced++;
      if (row.status !== "COMPLETED") result.notCompleted++;
      if (row.owner !== entry.user) result.misowned++;
    }
  }
  for (const cid of rowsByCid.keys()) if (!ledger.has(cid)) result.halfAccepted++;
  for (const user of users) {
    const mine = [...ledger].filter(([, e]) => e.user === user.name).map(([cid]) => cid);
    const shown = new Set(await listed(system, user));
    result.unlisted += mine.filter((cid) => !shown.has(cid)).length;
    result.cross_listed += [...shown].filter((cid) => ledger.get(cid)?.user !== user.name).length;
    for (const cid of mine) {
      if (received.get(user.name)?.get(cid)?.has("COMPLETED")) result.notifiedLive++;
      else if ((await statusOf(system, user, cid)) === "COMPLETED") result.readAfterReconnect++;
      else result.unconfirmed++;
    }
  }
  // Every notification any client got, against the ledger's owner (complete by now): another
  // user's order, or one that was never accepted, must never reach a client.
  result.crossUser = 0;
  result.unknownNotified = 0;
  for (const [name, seen] of received) {
    for (const cid of seen.keys()) {
      const owner = ledger.get(cid)?.user;
      if (owner === undefined) result.unknownNotified++;
      else if (owner !== name) result.crossUser++;
    }
  }
  return result;
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  log(`${SECONDS} s, ${USERS} users, ${RATE} orders/s, data in ${DATA_DIR}`);
  const system = await startSystem();
  const base0 = `http://127.0.0.1:${system.hosts[0].port}`;
  const catalog = (await (await fetch(`${base0}/api/products?size=100`)).json()).items;
  const token = async (name) => (await (await fetch(`${base0}/dev/token`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: name }),
  })).json()).accessToken;
  const users = [];
  for (let i = 0; i < USERS; i++) {
    const user = { name: `soak-${RUN}-u${i}`, token: await token(`soak-${RUN}-u${i}`) };
    await connectClient(system, user, i);
    users.push(user);
  }
  const probe = { name: `soak-${RUN}-probe`, token: await token(`soak-${RUN}-probe`) };
  users.push(probe);
  await connectClient(system, probe, USERS);
  log(`system up: hosts on ${system.hosts.map((h) => h.port)}, hubs on ${system.hubs.map((h) => h.port)}`);

  let stop = false;
  const inFlight = new Set();
  const load = (async () => {
    while (!stop) {
      const user = users[crypto.randomInt(USERS)];
      const order = placeOrder(system, user, catalog, { doubleClick: crypto.randomInt(5) === 0 }).catch((e) => {
        log(`load error: ${e.message}`);
        counts.errors = (counts.errors ?? 0) + 1;
      });
      inFlight.add(order);
      order.finally(() => inFlight.delete(order));
      await sleep(1000 / RATE);
    }
  })();

  const recoveries = [];
  const interval = Math.max(10, SECONDS / (FAULTS.length + 1)) * 1000;
  let next = Date.now() + interval;
  for (let i = 0; Date.now() + interval / 2 < started + SECONDS * 1000; i++) {
    await sleep(Math.max(0, next - Date.now()));
    const [name, inject] = FAULTS[i % FAULTS.length];
    const at = Date.now();
    log(`fault: ${name}`);
    await inject(system);
    const took = await recovery(system, probe, catalog, at);
    recoveries.push({ name, took });
    log(`fault: ${name}: recovered in ${took === null ? "NEVER" : `${took.toFixed(2)} s`}`);
    next = Math.max(next + interval, Date.now() + 2000);
  }
  await sleep(Math.max(0, started + SECONDS * 1000 - Date.now()));
  stop = true;
  await load;
  await Promise.allSettled([...inFlight]);
  log(`load stopped: ${counts.accepted} accepted, ${counts.refused} refused with 503, ${counts.retries} retries, ${counts.doubleClicks} double clicks`);
  await drained(system, users);
  await sleep(3000); // the last notifications
  const result = await check(system, users);
  for (const user of users) {
    user.stopping = true;
    await user.connection?.stop().catch(() => {});
  }
  for (const p of [...system.hosts, ...system.hubs]) await p.kill();

  console.log("\n== soak ledger");
  console.log(`duration ${SECONDS} s, ${USERS} users, ${RATE} orders/s offered`);
  console.log(`orders accepted (202): ${counts.accepted}; refused with 503 after retries: ${counts.refused}; load errors: ${counts.errors ?? 0}`);
  for (const r of recoveries) console.log(`fault ${r.name}: recovery ${r.took === null ? "NEVER" : `${r.took.toFixed(2)} s`}`);
  console.log(`lost ${result.lost}, duplicated ${result.duplicated}, cross-user ${result.crossUser}`);
  console.log(JSON.stringify(result));
  const failed = result.lost + result.duplicated + result.crossUser + result.mispriced + result.notCompleted +
    result.misowned + result.unlisted + result.cross_listed + result.halfAccepted + result.unconfirmed +
    result.unknownNotified +
    (counts.errors ?? 0) + recoveries.filter((r) => r.took === null).length;
  if (failed > 0 || counts.accepted === 0) {
    for (const p of [...system.hosts, ...system.hubs]) console.log(`--- ${p.name} output (tail)\n${p.output.slice(-4000)}`);
    console.log("SOAK FAILED");
    process.exit(1);
  }
  fs.rmSync(DATA_DIR, { recursive: true, force: true });
  console.log("SOAK PASSED");
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
