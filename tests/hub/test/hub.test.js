// The official @microsoft/signalr client (Node) against the real signalr-hub process, with Redis.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const {
  signalR, token, expiredToken, forgedToken, startRedis, startHub, freePort, client, connected,
  publisher, publish, notification, sleep, waitFor,
} = require("../lib/hub");

const { HttpTransportType, HubConnectionState } = signalR;

describe("signalr-hub with the official client", () => {
  let redis, hubA, hubB, pub;
  const open = [];
  const track = (c) => { open.push(c); return c; };

  before(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, HUB_CORS_ORIGINS: "http://localhost:5173" };
    [hubA, hubB] = await Promise.all([startHub(env), startHub(env)]);
    pub = await publisher(redis.url);
  });

  after(async () => {
    await Promise.allSettled(open.map((c) => c.stop()));
    if (pub) await pub.quit();
    await Promise.allSettled([hubA?.stop(), hubB?.stop()]);
    redis?.stop();
  });

  it("negotiates, connects over WebSockets and answers Ping", async () => {
    const c = track(await connected(hubA, "ws-user", { transport: HttpTransportType.WebSockets }));
    assert.equal(c.state, HubConnectionState.Connected);
    assert.ok(c.connectionId, "negotiate gave a connection id");
    assert.equal(await c.invoke("Ping"), "pong");
    const n = notification();
    await publish(pub, "ws-user", n);
    await waitFor(() => c.received.length === 1, 5000, "the notification");
    assert.deepEqual(c.received[0], n);
  });

  it("connects with skipNegotiation over WebSockets", async () => {
    const c = track(await connected(hubA, "skip-user", {
      transport: HttpTransportType.WebSockets, skipNegotiation: true,
    }));
    assert.equal(await c.invoke("ping"), "pong");
    const n = notification("PROCESSING", null);
    await publish(pub, "skip-user", n);
    await waitFor(() => c.received.length === 1, 5000, "the notification");
    assert.deepEqual(c.received[0], n);
  });

  it("receives a Notification over Long Polling, invokes and stops cleanly", async () => {
    const c = track(await connected(hubB, "lp-user", { transport: HttpTransportType.LongPolling }));
    assert.equal(await c.invoke("Ping"), "pong");
    const n = notification();
    await publish(pub, "lp-user", n);
    await waitFor(() => c.received.length === 1, 5000, "the notification over Long Polling");
    assert.deepEqual(c.received[0], n);
    await c.stop();
    assert.equal(c.state, HubConnectionState.Disconnected);
  });

  it("delivers a notification from the Redis backplane to its user only", async () => {
    const alice = track(await connected(hubA, "alice-1"));
    const bob = track(await connected(hubA, "bob-1"));
    const n = notification();
    assert.match(await publish(pub, "alice-1", n), /^\d+-\d+$/, "a stream entry id");
    await waitFor(() => alice.received.length === 1, 5000, "alice's notification");
    await sleep(400);
    assert.deepEqual(alice.received, [n]);
    assert.deepEqual(bob.received, []);
  });

  it("answers GetCurrentStatus for the owner and null for anybody else", async () => {
    const cid = crypto.randomUUID();
    await pub.set(`order:map:${cid}`, "owner-1", { EX: 60 });
    await pub.set(`order:status:${cid}`, "COMPLETED|42", { EX: 60 });
    const owner = track(await connected(hubA, "owner-1"));
    const other = track(await connected(hubB, "other-1", { transport: HttpTransportType.LongPolling }));
    assert.deepEqual(await owner.invoke("GetCurrentStatus", cid),
      { correlationId: cid, status: "COMPLETED", orderId: 42 });
    assert.deepEqual(await owner.invoke("getcurrentstatus", cid),
      { correlationId: cid, status: "COMPLETED", orderId: 42 }, "method names are case-insensitive");
    assert.equal(await other.invoke("GetCurrentStatus", cid), null, "another user's order is unknown");
    assert.equal(await owner.invoke("GetCurrentStatus", crypto.randomUUID()), null);
    await assert.rejects(owner.invoke("GetCurrentStatus", "not-a-uuid"), /UUID/);
    await assert.rejects(owner.invoke("GetCurrentStatus"), /argument/);
    assert.equal(owner.state, HubConnectionState.Connected);
  });

  it("rejects an unknown method with an error and keeps the connection", async () => {
    const c = track(await connected(hubB, "unknown-user"));
    await assert.rejects(c.invoke("NoSuchMethod", 1), /Unknown hub method 'NoSuchMethod'/);
    assert.equal(c.state, HubConnectionState.Connected);
    assert.equal(await c.invoke("Ping"), "pong");
  });

  for (const [name, bad] of [["expired", expiredToken], ["forged", forgedToken]]) {
    it(`refuses an ${name} token at negotiate and at connect`, async () => {
      const negotiate = await fetch(`${hubA.hubUrl}/negotiate?negotiateVersion=1`, {
        method: "POST", headers: { authorization: `Bearer ${bad("mallory")}` },
      });
      assert.equal(negotiate.status, 401);
      const viaNegotiate = client(hubA, "mallory", {}, { tokenFor: bad });
      await assert.rejects(viaNegotiate.start(), /401/);
      const direct = client(hubA, "mallory", {
        transport: HttpTransportType.WebSockets, skipNegotiation: true,
      }, { tokenFor: bad });
      await assert.rejects(direct.start());
      const poll = await fetch(`${hubA.hubUrl}?id=whatever`, {
        headers: { authorization: `Bearer ${bad("mallory")}` },
      });
      assert.equal(poll.status, 401);
    });
  }

  for (const transport of ["WebSockets", "LongPolling"]) {
    it(`speaks MessagePack over ${transport}: invocations, a Notification, errors`, async () => {
      const user = `msgpack-${transport}`;
      const c = track(await connected(hubA, user, { transport: HttpTransportType[transport] }, { messagePack: true }));
      assert.equal(await c.invoke("Ping"), "pong");
      await assert.rejects(c.invoke("NoSuchMethod"), /Unknown hub method 'NoSuchMethod'/);
      assert.equal(await c.invoke("GetCurrentStatus", crypto.randomUUID()), null);
      const n = notification();
      await publish(pub, user, n);
      await waitFor(() => c.received.length === 1, 5000, "the notification");
      assert.deepEqual(c.received[0], n);
      assert.equal(c.state, HubConnectionState.Connected);
    });
  }

  it("negotiates version 0 and 1 with both transports in Text and Binary", async () => {
    const auth = { authorization: `Bearer ${token("negotiator")}` };
    const v1 = await (await fetch(`${hubA.hubUrl}/negotiate?negotiateVersion=1`, { method: "POST", headers: auth })).json();
    assert.equal(v1.negotiateVersion, 1);
    assert.ok(v1.connectionId && v1.connectionToken && v1.connectionId !== v1.connectionToken);
    assert.deepEqual(v1.availableTransports, [
      { transport: "WebSockets", transferFormats: ["Text", "Binary"] },
      { transport: "LongPolling", transferFormats: ["Text", "Binary"] },
    ]);
    const v0 = await (await fetch(`${hubA.hubUrl}/negotiate`, { method: "POST", headers: auth })).json();
    assert.equal(v0.negotiateVersion, 0);
    assert.equal(v0.connectionToken, undefined);
    const missing = await fetch(`${hubA.hubUrl}/negotiate?negotiateVersion=1`, { method: "POST" });
    assert.equal(missing.status, 401);
  });

  it("two replicas behind one Redis deliver to each of the user's connections exactly once", async () => {
    const onA = track(await connected(hubA, "carol"));
    const onB = track(await connected(hubB, "carol", { transport: HttpTransportType.LongPolling }));
    const onB2 = track(await connected(hubB, "carol"));
    const dave = track(await connected(hubB, "dave"));
    const n = notification();
    await publish(pub, "carol", n);
    await waitFor(() => onA.received.length && onB.received.length && onB2.received.length,
      5000, "carol's notification on every connection");
    await sleep(600);
    assert.deepEqual(onA.received, [n]);
    assert.deepEqual(onB.received, [n]);
    assert.deepEqual(onB2.received, [n]);
    assert.deepEqual(dave.received, []);
  });

  it("answers CORS preflights for the SPA origin only, with credentials and never *", async () => {
    const preflight = (origin) => fetch(`${hubA.hubUrl}/negotiate?negotiateVersion=1`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,x-signalr-user-agent,x-requested-with,content-type",
      },
    });
    const ok = await preflight("http://localhost:5173");
    assert.equal(ok.headers.get("access-control-allow-origin"), "http://localhost:5173");
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
    const allowed = ok.headers.get("access-control-allow-headers");
    for (const h of ["x-signalr-user-agent", "x-requested-with", "authorization", "content-type"]) {
      assert.match(allowed, new RegExp(h));
    }
    const other = await preflight("http://evil.example");
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  });

  it("reports health and metrics", async () => {
    const health = await (await fetch(`${hubA.url}/hubs/health`)).json();
    assert.equal(health.status, "ok");
    assert.equal(health.fanout, "redis");
    const metrics = await (await fetch(`${hubA.url}/hubs/metrics`)).text();
    assert.match(metrics, /^signalr_hub_connections \d+$/m);
    assert.match(metrics, /^signalr_hub_notifications_delivered_total [1-9]\d*$/m);
    assert.match(metrics, /^signalr_hub_fanout_lag_seconds /m);
  });
});

describe("shutdown and restart", () => {
  let redis;
  before(async () => { redis = await startRedis(); });
  after(() => redis?.stop());

  it("closes connections with allowReconnect on SIGTERM and the client reconnects to a new hub", async () => {
    const port = await freePort();
    const env = { REDIS_URL: redis.url, HUB_PORT: String(port) };
    let hub = await startHub(env);
    const c = await connected(hub, "restart-user", {}, { reconnect: true });
    const reconnecting = new Promise((resolve) => c.onreconnecting(resolve));
    const reconnected = new Promise((resolve) => c.onreconnected(resolve));
    const { code } = await hub.stop("SIGTERM");
    assert.equal(code, 0, "graceful exit");
    const error = await reconnecting;
    assert.match(String(error), /Server is shutting down/);
    hub = await startHub(env);
    try {
      await reconnected;
      assert.equal(await c.invoke("Ping"), "pong");
      const pub = await publisher(redis.url);
      const n = notification();
      await publish(pub, "restart-user", n);
      await waitFor(() => c.received.length === 1, 5000, "the notification after reconnecting");
      await pub.quit();
    } finally {
      await c.stop();
      await hub.stop();
    }
  });
});
