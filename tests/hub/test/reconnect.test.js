// Stateful reconnect with the official client (`withStatefulReconnect()`, @microsoft/signalr
// 10.0.11): a socket cut by a TCP proxy (no close frame, as a network drops it) while the hub keeps
// publishing. The client resumes the same connection on a new socket and receives every
// notification exactly once, in order, with no reconnecting or close event. Wire as in
// @microsoft/signalr src/MessageBuffer.ts and aspnetcore src/SignalR/common/Shared/MessageBuffer.cs
// @ 1e0bf1c78ade1e23400977d1e3315af6acb51838 (see signalr-hub/src/replay.rs).
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { signalR, startRedis, startHub, client, publisher, publish, notification, sleep, waitFor } = require("../lib/hub");
const { startProxy } = require("../lib/proxy");

const { HttpTransportType, HubConnectionState } = signalR;
const BEFORE = 5;
const DURING = 100;

describe("stateful reconnect across a cut socket", () => {
  let redis, hub, pub, proxy;

  before(async () => {
    redis = await startRedis();
    hub = await startHub({ REDIS_URL: redis.url });
    pub = await publisher(redis.url);
    proxy = await startProxy(Number(new URL(hub.url).port));
  });

  after(async () => {
    await proxy?.close();
    if (pub) await pub.quit();
    await hub?.stop();
    redis?.stop();
  });

  for (const messagePack of [false, true]) {
    it(`delivers the ${DURING} notifications sent during the cut exactly once, in order (${messagePack ? "MessagePack" : "JSON"})`, async () => {
      const user = `resume-${messagePack ? "msgpack" : "json"}`;
      const url = `http://127.0.0.1:${proxy.port}/hubs/order-status`;
      const c = client(hub, user, { transport: HttpTransportType.WebSockets }, { statefulReconnect: true, messagePack, url });
      const events = [];
      c.onreconnecting(() => events.push("reconnecting"));
      c.onclose(() => events.push("close"));
      await c.start();
      const id = c.connectionId;
      const sent = [];
      const send = async (i) => {
        const n = notification("COMPLETED", i);
        sent.push(n);
        await publish(pub, user, n);
      };

      for (let i = 0; i < BEFORE; i++) await send(i);
      await waitFor(() => c.received.length === BEFORE, 5000, "the notifications before the cut");

      proxy.cut();
      await waitFor(() => proxy.held() > 0, 5000, "the client's attempt to resume");
      for (let i = BEFORE; i < BEFORE + DURING; i++) await send(i);
      await sleep(300);
      proxy.restore();

      await waitFor(() => c.received.length >= sent.length, 10000, `all ${sent.length} notifications`);
      await sleep(1500); // room for a duplicate to show up
      assert.deepEqual(c.received.map((n) => n.orderId), sent.map((n) => n.orderId), "each once, in order");
      assert.deepEqual(c.received, sent);
      assert.equal(c.state, HubConnectionState.Connected);
      assert.equal(c.connectionId, id, "the same connection, resumed");
      assert.deepEqual(events, [], "no reconnecting or close: the resume is invisible");
      assert.equal(await c.invoke("Ping"), "pong", "invocations work on the resumed socket");
      await c.stop();
    });
  }

  it("offers stateful reconnect only to a client that asks for it", async () => {
    const { token } = require("../lib/hub");
    const auth = { authorization: `Bearer ${token("negotiator")}` };
    const asked = await (await fetch(`${hub.hubUrl}/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: "POST", headers: auth })).json();
    assert.equal(asked.useStatefulReconnect, true);
    const plain = await (await fetch(`${hub.hubUrl}/negotiate?negotiateVersion=1`, { method: "POST", headers: auth })).json();
    assert.equal(plain.useStatefulReconnect, undefined);
  });
});
