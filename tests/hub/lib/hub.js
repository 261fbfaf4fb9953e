// Helpers for the hub tests: a throwaway Redis, real signalr-hub processes, dev tokens and
// official @microsoft/signalr clients.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const jwt = require("jsonwebtoken");
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const { createClient } = require("redis");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const HUB_BIN = process.env.HUB_BIN || path.join(ROOT, "target", "debug", "signalr-hub");
const SIGNING_KEY = "hub-tests-signing-key-0123456789abcdef";
const ISSUER = "contoso-orders-dev";
const AUDIENCE = "contoso-orders-api";

/** A dev token exactly like the API's POST /dev/token issues (HS256, iss, aud, sub). */
function token(user, { key = SIGNING_KEY, expiresIn = "10m", issuer = ISSUER } = {}) {
  return jwt.sign({ sub: user }, key, { algorithm: "HS256", issuer, audience: AUDIENCE, expiresIn });
}

function expiredToken(user) {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sub: user, iat: now - 3600, exp: now - 600 }, SIGNING_KEY, {
    algorithm: "HS256", issuer: ISSUER, audience: AUDIENCE,
  });
}

function forgedToken(user) {
  return token(user, { key: "a-completely-different-key-that-nobody-shares!" });
}

/** Redis for the tests: $REDIS_URL if set, else (or with `own`, for a test that restarts it) a
 *  throwaway one from tests/servers/redis.sh. */
async function startRedis({ own = false } = {}) {
  if (process.env.REDIS_URL && !own) {
    return { url: process.env.REDIS_URL, stop() {} };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-tests-redis-"));
  const env = { ...process.env, REDIS_TEST_DIR: path.join(dir, "redis") };
  const script = path.join(ROOT, "tests", "servers", "redis.sh");
  const out = execFileSync(script, ["start"], { env, encoding: "utf8" });
  const url = /REDIS_URL=(\S+)/.exec(out)[1];
  return {
    url,
    /** Kills it and starts it again on the same port (no persistence: it comes back empty). */
    restart() {
      execFileSync(script, ["restart"], { env, stdio: "ignore" });
    },
    stop() {
      execFileSync(script, ["stop"], { env, stdio: "ignore" });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
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

/** Starts target/debug/signalr-hub; resolves once it prints its URL. */
async function startHub(env = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-tests-data-"));
  const child = spawn(HUB_BIN, [], {
    env: {
      PATH: process.env.PATH,
      HUB_PORT: "0",
      DATA_DIR: dataDir,
      JWT_SIGNING_KEY: SIGNING_KEY,
      FANOUT_CHANNEL_PREFIX: "hubtests:",
      RUST_LOG: process.env.RUST_LOG || "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; if (process.env.HUB_LOG) process.stderr.write(d); });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`hub did not start: ${stderr}`)), 20000);
    child.stdout.on("data", (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`hub exited ${code}: ${stderr}`)); });
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    url,
    hubUrl: `${url}/hubs/order-status`,
    child,
    exited,
    stderr: () => stderr,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  };
}

/** An official client connection for `user`; `options` go to withUrl. Not started.
 *  `messagePack`: the MessagePack hub protocol (@microsoft/signalr-protocol-msgpack) for JSON;
 *  `statefulReconnect`: `withStatefulReconnect()`; `url`: the hub's URL through a proxy. */
function client(hub, user, options = {}, {
  reconnect = false, tokenFor = token, messagePack = false, statefulReconnect = false, url = hub.hubUrl,
} = {}) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { accessTokenFactory: () => tokenFor(user), ...options })
    .configureLogging(process.env.HUB_CLIENT_LOG ? signalR.LogLevel.Debug : signalR.LogLevel.None);
  if (reconnect) builder = builder.withAutomaticReconnect([0, 200, 500, 1000, 1000, 2000, 2000, 2000]);
  if (messagePack) builder = builder.withHubProtocol(new MessagePackHubProtocol());
  if (statefulReconnect) builder = builder.withStatefulReconnect();
  const connection = builder.build();
  connection.received = [];
  connection.on("Notification", (n) => connection.received.push(n));
  return connection;
}

async function connected(hub, user, options = {}, extra = {}) {
  const connection = client(hub, user, options, extra);
  await connection.start();
  return connection;
}

async function publisher(redisUrl) {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  return redis;
}

// The notifier's own script (orders_adapters::redis::RedisFanout::publish), read from the
// adapter's source: the backplane stream entry and the user's history, as production writes them.
const PUBLISH_LUA = fs.readFileSync(path.join(ROOT, "adapters", "src", "redis", "publish.lua"), "utf8");
const STREAM_LENGTH = "100000"; // orders_adapters::redis::STREAM_LENGTH
const HISTORY_PER_USER = "32";
const HISTORY_AGE_MS = "600000";

/** Publishes a fan-out message exactly as the notifier does; resolves to its cursor (the stream
 *  entry id), which is also set on `notification` (the first time) as the hub will deliver it. */
async function publish(redis, user, notification, prefix = "hubtests:") {
  const { cursor: _, ...published } = notification;
  const payload = JSON.stringify({ userId: user, notification: published });
  const cursor = await redis.eval(PUBLISH_LUA, {
    keys: [`${prefix}notifications`, `${prefix}history:${user}`],
    arguments: [payload, STREAM_LENGTH, HISTORY_PER_USER, HISTORY_AGE_MS],
  });
  notification.cursor ??= cursor;
  return cursor;
}

function notification(status = "COMPLETED", orderId = 42) {
  return { correlationId: crypto.randomUUID(), status, orderId };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

module.exports = {
  signalR, token, expiredToken, forgedToken, startRedis, startHub, freePort, client, connected,
  publisher, publish, notification, sleep, waitFor, SIGNING_KEY,
};
