// Checkout: one Idempotency-Key per checkout attempt. A double click joins the request already in
// flight; a retry (automatic after a network error, 409 or 503, or the user clicking again after
// an error, even after a reload) reuses the key as long as the cart is unchanged, so the API
// replays its first answer instead of making a second order.
import { ApiError, placeOrder } from "./api";
import type { Accepted, ItemLine } from "./types";
import type { CartLine } from "./cart";
import { Store, randomId, readJson, writeJson } from "./store";
import { applyStatus, applySubmitted } from "./tracker";
import { session } from "./auth/session";
import type { ErrorMessage } from "./errors";

interface Attempt {
  key: string;
  body: string;
}

const KEY = "contoso.checkout.attempt";
const PROBLEM_KEY = "contoso.checkout.problem";
const MAX_TRIES = 4;
const MAX_AUTO_WAIT_S = 10;

let inFlight: Promise<Accepted> | null = null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function checkoutInFlight(): boolean {
  return inFlight !== null;
}

/** The key of the current attempt, for display/debugging. */
export function currentAttemptKey(): string | null {
  return readJson<Attempt | null>(sessionStorage, KEY, null)?.key ?? null;
}

function submitted(l: CartLine): ItemLine {
  return {
    productId: l.productId,
    productName: l.name,
    unitPriceCents: l.unitCents,
    quantity: l.quantity,
    billingPeriod: l.billingPeriod,
  };
}

export function checkout(lines: CartLine[], onRetry?: (message: string) => void): Promise<Accepted> {
  if (inFlight) return inFlight;
  const items = lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
  const body = JSON.stringify(items);
  let attempt = readJson<Attempt | null>(sessionStorage, KEY, null);
  if (!attempt || attempt.body !== body) {
    attempt = { key: randomId(), body };
    writeJson(sessionStorage, KEY, attempt);
  }
  const key = attempt.key;
  inFlight = (async () => {
    for (let tryNo = 1; ; tryNo++) {
      try {
        const res = await placeOrder(items, key);
        writeJson(sessionStorage, KEY, null);
        setCheckoutProblem(null);
        applyStatus({ correlationId: res.data.correlationId, status: "ACCEPTED", orderId: null }, "checkout");
        applySubmitted(res.data.correlationId, lines.map(submitted));
        return res.data;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.status === 422) writeJson(sessionStorage, KEY, null); // that key is spent
        const retriable =
          e.status === 0 || e.status === 409 || ((e.status === 503 || e.status === 429) && (e.retryAfter ?? 1) <= MAX_AUTO_WAIT_S);
        if (!retriable || tryNo >= MAX_TRIES) throw e;
        const waitS = e.status === 0 ? tryNo : Math.max(1, e.retryAfter ?? 1);
        onRetry?.(
          e.status === 0
            ? `The shop is not answering; trying again in ${waitS} s. Your order will be placed only once.`
            : e.status === 409
              ? "Still submitting your order…"
              : `The shop is busy; retrying in ${waitS} s…`,
        );
        await sleep(waitS * 1000);
      }
    }
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

// ---- a checkout that did not go through, kept until it does ----------------------------------

/** The last checkout that failed for want of a server, shown on every page until one succeeds. */
export const checkoutProblem = new Store<ErrorMessage | null>(readJson(sessionStorage, PROBLEM_KEY, null));

function setCheckoutProblem(problem: ErrorMessage | null): void {
  writeJson(sessionStorage, PROBLEM_KEY, problem);
  checkoutProblem.set(problem);
}

/** Records a checkout failure the user cannot fix (outage, overload); false for one they can. */
export function recordCheckoutFailure(e: unknown): boolean {
  if (!(e instanceof ApiError) || !(e.status === 0 || e.status === 429 || e.status >= 500)) return false;
  const detail =
    e.status !== 0
      ? "The shop could not take orders just now. Your cart is kept: place the order again in a moment."
      : navigator.onLine
        ? "The shop's server did not answer. Your cart is kept: place the order again when it is back. If it did reach us, it is not placed twice."
        : "You are offline. Your cart is kept: place the order again once you are back online.";
  setCheckoutProblem({ title: "Your order was not placed", detail, reference: e.requestId });
  return true;
}

// A different user, or nobody, at this tab: neither the attempt nor its problem carries over.
let user = session.get()?.userId ?? null;
session.subscribe((s) => {
  if ((s?.userId ?? null) === user) return;
  user = s?.userId ?? null;
  writeJson(sessionStorage, KEY, null);
  setCheckoutProblem(null);
});
