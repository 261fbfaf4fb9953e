// The Redis Streams backplane with official @microsoft/signalr clients: nothing is lost across a
// Redis restart or a hub replica's crash, and nothing arrives twice.
//
// - Redis restarted (kill -9, empty again) while notifications are published to clients on two
//   hub replicas: each replica resumes reading after the last entry it saw, so every client gets
//   every notification of its user exactly once, in order.
// - A hub replica killed (SIGKILL) and restarted while notifications are published: its clients
//   reconnect (withAutomaticReconnect) with `?after=<cursor of the last notification seen>` on
//   the hub URL (HubConnection.baseUrl may be changed while Reconnecting: @microsoft/signalr
//   10.0.11, the version package-lock.json pins, src/HubConnection.ts `set baseUrl`, which
//   throws in any other state; checked in node_modules/@microsoft/signalr/dist/cjs), and the hub sends what they missed from the user's
//   history, then the live ones: each exactly once, in order.
//
// The tests publish with the notifier's own script (adapters/src/redis/publish.lua), retrying a
// publish that fails while Redis is down, as the notifier's message is retried.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const {
  signalR, startRedis, startHub, freePort, client, publisher, publish, notification, sleep, waitFor,
} = require("../lib/hub");

const { HttpTransportType } = signalR;
const USERS = ["bp-ann", "bp-ben", "bp-cat"];

/** Publishes until Redis takes it (a failure while it is down is retried). */
async function publishRetrying(pub, user, n) {
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      return await publish(pub, user, n);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** Every client got exactly its user's notifications, each once, in publication order. */
function assertExactlyOnceInOrder(clients, sent) {
  for (const c of clients) {
    const expected = sent.filter((s) => s.user === c.user).map((s) => s.n.correlationId);
    const got = c.received.map((n) => n.correlationId);
    assert.deepEqual(got, expected, `${c.user} on ${c.where}`);
    const cursors = c.received.map((n) => n.cursor);
    assert.ok(cursors.every((x) => /^\d+-\d+$/.test(x)), `${c.user}: every notification has a cursor`);
  }
}

describe("the backplane loses nothing", () => {
  it("every client on two replicas gets every notification exactly once across a Redis restart", async () => {
    const redis = await startRedis({ own: true });
    const env = { REDIS_URL: redis.url };
    const hubs = [await startHub(env), await startHub(env)];
    const pub = await publisher(redis.url);
    pub.on("error", () => {}); // reconnects by itself; failed publishes are retried below
    const clients = [];
    try {
      for (const user of USERS) {
        for (const [i, hub] of hubs.entries()) {
          const c = client(hub, user, { transport: HttpTransportType.WebSockets }, { reconnect: true });
          c.user = user;
          c.where = `hub ${i}`;
          await c.start();
          clients.push(c);
        }
      }
      const sent = [];
      for (let i = 0; i < 90; i++) {
        if (i === 30) redis.restart();
        const user = USERS[i % USERS.length];
        const n = notification("COMPLETED", i);
        await publishRetrying(pub, user, n);
        sent.push({ user, n });
        await sleep(10);
      }
      const each = sent.length / USERS.length;
      await waitFor(() => clients.every((c) => c.received.length >= each), 20000, "every notification on every client");
      await sleep(500); // a duplicate would arrive by now
      assertExactlyOnceInOrder(clients, sent);
    } finally {
      for (const c of clients) await c.stop();
      await pub.quit().catch(() => {});
      for (const hub of hubs) await hub.stop();
      redis.stop();
    }
  });

  it("clients of a killed and restarted replica get what they missed from the history, exactly once", async () => {
    const redis = await startRedis();
    const port = await freePort();
    const env = { REDIS_URL: redis.url, HUB_PORT: String(port) };
    let hub = await startHub(env);
    const pub = await publisher(redis.url);
    const clients = [];
    try {
      for (const user of USERS) {
        const c = client(hub, user, { transport: HttpTransportType.WebSockets }, { reconnect: true });
        c.user = user;
        c.where = "the restarted hub";
        // Where the client resumes: the cursor of the last notification it saw.
        c.onreconnecting(() => {
          const last = c.received.at(-1)?.cursor;
          if (last) c.baseUrl = `${hub.hubUrl}?after=${last}`;
        });
        await c.start();
        clients.push(c);
      }
      const sent = [];
      const send = async (i) => {
        const user = USERS[i % USERS.length];
        const n = notification("COMPLETED", i);
        await publish(pub, user, n);
        sent.push({ user, n });
      };
      for (let i = 0; i < 15; i++) await send(i);
      await waitFor(() => clients.every((c) => c.received.length === 5), 5000, "the notifications before the kill");

      const reconnected = clients.map((c) => new Promise((resolve) => c.onreconnected(resolve)));
      await hub.stop("SIGKILL");
      for (let i = 15; i < 45; i++) await send(i); // completed while the replica is down
      hub = await startHub(env);
      for (let i = 45; i < 60; i++) {
        await send(i); // and while its clients come back
        await sleep(20);
      }
      await Promise.all(reconnected);
      await waitFor(() => clients.every((c) => c.received.length >= 20), 15000, "every notification after the restart");
      await sleep(500);
      assertExactlyOnceInOrder(clients, sent);
    } finally {
      for (const c of clients) await c.stop();
      await pub.quit();
      await hub.stop();
      redis.stop();
    }
  });
});
