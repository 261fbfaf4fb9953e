// The SignalR connection to the order-status hub (the official @microsoft/signalr client):
// Notifications move the tracker forward. A reconnect asks the hub for what this tab missed
// (`?after=` the last notification's cursor), and everything still open is re-read from the API
// as well, so nothing shown is ever stale.
import * as signalR from "@microsoft/signalr";
import type { Notification } from "./types";
import { Store } from "./store";
import { currentToken, session } from "./auth/session";
import { applyOrder, applyStatus, forget, pendingCorrelationIds } from "./tracker";
import { ApiError, getOrder } from "./api";
import { reach } from "./connectivity";

export type HubState = "offline" | "connecting" | "connected" | "reconnecting";

export const hubState = new Store<HubState>("offline");
/** Notifications this tab received (shown on the connection indicator). */
export const notificationCount = new Store(0);
/** Bumped after every (re)connect; views that show server data re-read it. */
export const resyncTick = new Store(0);
/** Bumped on every Notification; list views refresh. */
export const notificationTick = new Store(0);

let connection: signalR.HubConnection | null = null;
let restartTimer: ReturnType<typeof setTimeout> | undefined;
let restartDelay = 1000;
let hubUrl = "/hubs/order-status";
let generation = 0;
/** The cursor of the last notification this tab's connection received. */
let lastCursor: string | null = null;

/** The hub URL, asking for what followed `lastCursor` when there is one. */
function urlAfterLastCursor(): string {
  if (!lastCursor) return hubUrl;
  const url = new URL(hubUrl, location.href);
  url.searchParams.set("after", lastCursor);
  return url.toString();
}

export function configureHub(url: string): void {
  hubUrl = url;
}

async function resync(): Promise<void> {
  resyncTick.update((n) => n + 1);
  await Promise.all(
    pendingCorrelationIds().map(async (cid) => {
      try {
        applyOrder(await getOrder(cid));
      } catch (e) {
        // Deleted or long forgotten: stop tracking it. An outage: try again on the next resync.
        if (e instanceof ApiError && e.status === 404) forget(cid);
      }
    }),
  );
}

/** Asks the hub for the current status (the API is the other way to ask). */
export async function hubCurrentStatus(cid: string): Promise<Notification | null> {
  if (!connection || connection.state !== signalR.HubConnectionState.Connected) return null;
  try {
    return (await connection.invoke<Notification | null>("GetCurrentStatus", cid)) ?? null;
  } catch {
    return null;
  }
}

function build(): signalR.HubConnection {
  const c = new signalR.HubConnectionBuilder()
    // WebSockets only, without negotiate: negotiate state lives in one hub replica, so a negotiate
    // and a socket landing on different replicas would fail. A socket opened without a connection
    // id is a new connection on whichever replica takes it, so no sticky sessions are needed. The
    // client sends the token as `access_token` in the socket's query (browsers cannot set headers).
    .withUrl(hubUrl, {
      accessTokenFactory: () => currentToken() ?? "",
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    })
    // Quick first retries (a restarted hub is usually back within seconds), then slower; after the
    // last one the connection closes and scheduleRestart() keeps trying with a capped backoff.
    .withAutomaticReconnect([0, 1000, 2000, 3000, 5000, 10000, 10000, 30000])
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  c.on("Notification", (n: Notification) => {
    if (!n || typeof n.correlationId !== "string") return;
    if (typeof n.cursor === "string") lastCursor = n.cursor;
    notificationCount.update((x) => x + 1);
    applyStatus(n, "hub");
    notificationTick.update((x) => x + 1);
  });
  c.onreconnecting(() => {
    hubState.set("reconnecting");
    c.baseUrl = urlAfterLastCursor();
  });
  c.onreconnected(() => {
    hubState.set("connected");
    void resync();
  });
  c.onclose(() => {
    if (c !== connection) return;
    hubState.set("offline");
    scheduleRestart();
  });
  return c;
}

function scheduleRestart(): void {
  clearTimeout(restartTimer);
  if (!session.get()) return;
  const delay = restartDelay;
  restartDelay = Math.min(restartDelay * 2, 30_000);
  restartTimer = setTimeout(() => void start(), delay);
}

async function start(): Promise<void> {
  if (!session.get()) return;
  const gen = ++generation;
  if (!connection) connection = build();
  const c = connection;
  if (c.state !== signalR.HubConnectionState.Disconnected) return;
  hubState.set("connecting");
  try {
    c.baseUrl = urlAfterLastCursor();
    await c.start();
    if (gen !== generation || c !== connection) return;
    restartDelay = 1000;
    hubState.set("connected");
    void resync();
  } catch {
    if (c !== connection) return;
    hubState.set("offline");
    scheduleRestart();
  }
}

async function stop(): Promise<void> {
  clearTimeout(restartTimer);
  generation++;
  const c = connection;
  connection = null;
  hubState.set("offline");
  if (c) await c.stop().catch(() => {});
}

/** Connects while somebody is signed in; a different user gets a fresh connection. */
export function startHubForSession(): void {
  let user = session.get()?.userId ?? null;
  if (user) void start();
  session.subscribe((s) => {
    const next = s?.userId ?? null;
    if (next === user && (next === null || connection)) return;
    user = next;
    lastCursor = null; // another user's position means nothing to the next one
    void stop().then(() => {
      restartDelay = 1000;
      if (user) void start();
    });
  });
  // Back online / tab visible again: reconnect at once instead of waiting for the backoff.
  const kick = () => {
    if (session.get() && hubState.get() === "offline") {
      restartDelay = 1000;
      void start();
    }
  };
  window.addEventListener("online", kick);
  // The API answers again: reconnect now rather than when the backoff next fires.
  reach.subscribe((r) => {
    if (r !== "ok" || !session.get() || hubState.get() === "connected" || hubState.get() === "connecting") return;
    restartDelay = 1000;
    void stop().then(() => start());
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") kick();
  });
}

