// The HTTP API client: JSON in and out, RFC 9457 problems turned into ApiError, the bearer token
// from the session, 401 -> signed out.
import type { Accepted, DevToken, Order, Page, Problem, Product } from "./types";
import { currentToken, signOut } from "./auth/session";
import { configureProbe, reportAnswered, reportUnanswered } from "./connectivity";

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the request never got an answer. */
    readonly status: number,
    readonly problem: Problem,
    readonly retryAfter: number | null = null,
    readonly requestId: string | null = null,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
  }
  get field(): string | undefined {
    return this.problem.field;
  }
  get productIds(): string[] {
    return this.problem.productIds ?? [];
  }
}

let apiBase = "";

export function setApiBase(base: string): void {
  apiBase = base.replace(/\/+$/, "");
  configureProbe(apiBase);
}

interface RequestOptions {
  body?: unknown;
  auth?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
}

function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, Math.round(secs));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.round((date - Date.now()) / 1000));
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.auth) {
    const token = currentToken();
    if (!token) throw new ApiError(401, { title: "Unauthorized", detail: "You are not signed in." });
    headers.authorization = `Bearer ${token}`;
  }
  let res: Response;
  try {
    res = await fetch(`${apiBase}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    reportUnanswered();
    throw new ApiError(0, { title: "Network error", detail: "The server could not be reached." });
  }
  reportAnswered();
  const requestId = res.headers.get("x-request-id");
  let text = "";
  try {
    text = await res.text();
  } catch (e) {
    if ((e as Error).name === "AbortError" || opts.signal?.aborted) throw e;
    throw new ApiError(0, { title: "Network error", detail: "The answer was cut off." }, null, requestId);
  }
  if (opts.signal?.aborted) throw new DOMException("Aborted", "AbortError");
  let json: unknown = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    const problem: Problem =
      json && typeof json === "object" ? (json as Problem) : { title: res.statusText || `HTTP ${res.status}` };
    const err = new ApiError(res.status, problem, parseRetryAfter(res.headers.get("retry-after")), requestId);
    if (res.status === 401 && opts.auth) signOut("expired");
    throw err;
  }
  return { data: json as T, status: res.status, headers: res.headers };
}

// ---- endpoints -------------------------------------------------------------------------------

export interface ProductQuery {
  offset?: number;
  size?: number;
  q?: string;
  vendor?: string;
  category?: string;
}

function qs(params: Record<string, string | number | undefined>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") s.set(k, String(v));
  const out = s.toString();
  return out ? `?${out}` : "";
}

export async function listProducts(query: ProductQuery, signal?: AbortSignal): Promise<Page<Product>> {
  return (await request<Page<Product>>("GET", `/api/products${qs({ ...query })}`, { signal })).data;
}

export async function getProduct(productId: string, signal?: AbortSignal): Promise<Product> {
  return (await request<Product>("GET", `/api/products/${encodeURIComponent(productId)}`, { signal })).data;
}

export async function placeOrder(
  items: { productId: string; quantity: number }[],
  idempotencyKey: string,
): Promise<ApiResponse<Accepted>> {
  return request<Accepted>("POST", "/api/orders", {
    auth: true,
    body: { items },
    headers: { "idempotency-key": idempotencyKey },
  });
}

export async function listOrders(offset: number, size: number, signal?: AbortSignal): Promise<Page<Order>> {
  return (await request<Page<Order>>("GET", `/api/orders${qs({ offset, size })}`, { auth: true, signal })).data;
}

export async function getOrder(ref: string, signal?: AbortSignal): Promise<Order> {
  return (await request<Order>("GET", `/api/orders/${encodeURIComponent(ref)}`, { auth: true, signal })).data;
}

export async function deleteOrder(ref: string | number): Promise<void> {
  await request<null>("DELETE", `/api/orders/${encodeURIComponent(String(ref))}`, { auth: true });
}

export async function devToken(userId: string): Promise<DevToken> {
  return (await request<DevToken>("POST", "/dev/token", { body: { userId } })).data;
}
