// The cart: lines with integer-cent prices, kept in localStorage (survives reloads; other tabs
// follow through the storage event).
import type { Product } from "./types";
import { Store, readJson, writeJson } from "./store";
import { lineCents, sumCents } from "./money";

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
const KEY = "contoso.cart";

function load(): CartLine[] {
  const lines = readJson<CartLine[]>(localStorage, KEY, []);
  return Array.isArray(lines)
    ? lines.filter((l) => l && typeof l.productId === "string" && Number.isSafeInteger(l.unitCents) && l.quantity >= 1)
    : [];
}

export const cart = new Store<CartLine[]>(load());

function save(lines: CartLine[]): void {
  writeJson(localStorage, KEY, lines.length ? lines : null);
  cart.set(lines);
}

window.addEventListener("storage", (e) => {
  if (e.key === KEY || e.key === null) cart.set(load());
});

function clampQuantity(q: number): number {
  if (!Number.isFinite(q)) return 1;
  return Math.min(MAX_QUANTITY, Math.max(1, Math.floor(q)));
}

export function addToCart(p: Product, quantity = 1): void {
  const lines = cart.get();
  const existing = lines.find((l) => l.productId === p.productId);
  if (existing) {
    save(lines.map((l) => (l === existing ? { ...l, quantity: clampQuantity(l.quantity + quantity) } : l)));
    return;
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

export function cartTotalCents(lines: CartLine[]): number {
  return sumCents(lines.map((l) => lineCents(l.unitCents, l.quantity)));
}

export function cartCount(lines: CartLine[]): number {
  return lines.reduce((n, l) => n + l.quantity, 0);
}
