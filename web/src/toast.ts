// Short confirmations ("Added to cart"), announced politely to screen readers.
import { Store } from "./store";

export interface Toast {
  id: number;
  text: string;
}

export const toasts = new Store<Toast[]>([]);
let nextId = 1;

export function toast(text: string, ms = 3500): void {
  const t = { id: nextId++, text };
  toasts.update((all) => [...all.slice(-2), t]);
  setTimeout(() => toasts.update((all) => all.filter((x) => x.id !== t.id)), ms);
}
