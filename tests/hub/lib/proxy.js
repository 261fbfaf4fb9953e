// A TCP proxy the test controls, to cut a client's socket the way a network does: `cut()` drops
// every open connection at once (no WebSocket close frame), and holds new ones, unanswered, until
// `restore()` connects them through.
"use strict";

const net = require("node:net");

async function startProxy(targetPort, targetHost = "127.0.0.1") {
  const open = new Set();
  let held = [];
  let cutting = false;

  const through = (client) => {
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    open.add(pair);
    const drop = () => { open.delete(pair); client.destroy(); upstream.destroy(); };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const server = net.createServer((client) => {
    if (cutting) {
      client.pause();
      held.push(client);
    } else {
      through(client);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    port: server.address().port,
    /** Connections waiting for `restore()`. */
    held: () => held.length,
    cut() {
      cutting = true;
      for (const { client, upstream } of open) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      open.clear();
    },
    restore() {
      cutting = false;
      const waiting = held;
      held = [];
      for (const client of waiting) {
        through(client);
        client.resume();
      }
    },
    close: () => new Promise((resolve) => {
      for (const { client, upstream } of open) { client.destroy(); upstream.destroy(); }
      for (const client of held) client.destroy();
      server.close(resolve);
    }),
  };
}

module.exports = { startProxy };
