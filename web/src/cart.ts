// The cart: lines with integer-cent prices, kept in localStorage per user (survives reloads;
// other tabs follow through the storage event). Signed out, a guest cart of its own: what a guest
// adds joins the user's cart at sign-in, and a sign-out leaves the user's cart behind, hidden,
// for their next sign-in, so the next person at this browser never sees it.
import type { Product } from "./types";
import { Store, readJson, writeJson } from "./store";
import { type Charges, charges, lineCents } from "./money";
import { session } from "./auth/session";

export interface CartLine {
  productId: string;
  name: string;
  vendor: string;
  currency: string;
  billingPeriod: string;
  /** Price per unit after the discount, in cents (what the API charges today). */
  unitCents: number;
  /** List price per unit, in cents. */
  listCents: number;
  discount: number;
  quantity: number;
}

export const MAX_QUANTITY = 1000;
export const MAX_LINES = 100;
const GUEST_KEY = "contoso.cart";

/** The storage key of the cart shown now: the signed-in user's, else the guest's. */
function currentKey(): string {
  const s = session.get();
  return s ? `${GUEST_KEY}.${s.userId}` : GUEST_KEY;
}

function load(key = currentKey()): CartLine[] {
  const lines = readJson<CartLine[]>(localStorage, key, []);
  return Array.isArray(lines)
    ? lines.filter((l) => l && typeof l.productId === "string" && Number.isSafeInteger(l.unitCents) && l.quantity >= 1)
    : [];
}

export const cart = new Store<CartLine[]>(load());

function save(lines: CartLine[]): void {
  writeJson(localStorage, currentKey(), lines.length ? lines : null);
  cart.set(lines);
}

window.addEventListener("storage", (e) => {
  if (e.key === currentKey() || e.key === null) cart.set(load());
});

// At sign-in the guest's lines join the user's cart (quantities add up); at sign-out the guest
// cart, empty unless a guest added to it, is shown instead.
session.subscribe((s) => {
  const guest = s ? load(GUEST_KEY) : [];
  if (guest.length === 0) {
    cart.set(load());
    return;
  }
  const mine = load();
  for (const line of guest) {
    const existing = mine.find((l) => l.productId === line.productId);
    if (existing) existing.quantity = clampQuantity(existing.quantity + line.quantity);
    else if (mine.length < MAX_LINES) mine.push(line);
  }
  writeJson(localStorage, GUEST_KEY, null);
  save(mine);
});

export function clampQuantity(q: number): number {
  if (!Number.isFinite(q)) return 1;
  return Math.min(MAX_QUANTITY, Math.max(1, Math.floor(q)));
}

/** Adds to the cart; returns the line's quantity now (at most MAX_QUANTITY). */
export function addToCart(p: Product, quantity = 1): number {
  const lines = cart.get();
  const existing = lines.find((l) => l.productId === p.productId);
  if (existing) {
    const total = clampQuantity(existing.quantity + quantity);
    save(lines.map((l) => (l === existing ? { ...l, quantity: total } : l)));
    return total;
  }
  if (lines.length >= MAX_LINES) throw new Error(`A cart holds at most ${MAX_LINES} different products.`);
  save([
    ...lines,
    {
      productId: p.productId,
      name: p.name,
      vendor: p.vendor,
      currency: p.currency,
      billingPeriod: p.billingPeriod,
      unitCents: p.finalPriceCents,
      listCents: p.priceCents,
      discount: p.discount,
      quantity: clampQuantity(quantity),
    },
  ]);
  return clampQuantity(quantity);
}

export function setQuantity(productId: string, quantity: number): void {
  save(cart.get().map((l) => (l.productId === productId ? { ...l, quantity: clampQuantity(quantity) } : l)));
}

export function removeFromCart(productId: string): void {
  save(cart.get().filter((l) => l.productId !== productId));
}

export function clearCart(): void {
  save([]);
}

export function cartCharges(lines: CartLine[]): Charges {
  return charges(lines.map((l) => ({ billingPeriod: l.billingPeriod, cents: lineCents(l.unitCents, l.quantity) })));
}

export function cartCount(lines: CartLine[]): number {
  return lines.reduce((n, l) => n + l.quantity, 0);
}
