// Product images: the catalog gives every product `imageUrl: /images/products/{lowercase id}.svg`
// (data/catalog.json, retired products included). This Vite plugin draws one small SVG per
// catalog entry from the catalog itself (vendor colour, product id, vendor, category) and emits
// them into dist/images/products/ with the build; `npm run dev` serves the same images.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Plugin } from "vite";

const CATALOG = fileURLToPath(new URL("../data/catalog.json", import.meta.url));
const PREFIX = "images/products/";

interface CatalogEntry {
  productId: string;
  vendor: string;
  category: string;
  imageUrl: string;
}

// Dark enough for white text (WCAG AA contrast for the small lines); others get PALETTE by hash.
const VENDOR_COLOR: Record<string, string> = {
  Microsoft: "#0067b8",
  AWS: "#232f3e",
  "Google Cloud": "#1a5fc4",
  Cisco: "#005073",
  CompTIA: "#b0102a",
  "Linux Foundation": "#003778",
  ISC2: "#006747",
  ISACA: "#00558c",
  Oracle: "#a8372a",
  PMI: "#1d5b79",
  Salesforce: "#0b5cab",
  "Red Hat": "#b30000",
  Databricks: "#b5291b",
  "EC-Council": "#8c1526",
  HashiCorp: "#1f2430",
  Snowflake: "#0f6289",
  Juniper: "#084d6a",
  "Palo Alto Networks": "#b8420d",
  Fortinet: "#a31b14",
  OffSec: "#2a2a72",
};
const PALETTE = ["#0b5cad", "#6d28d9", "#007d79", "#b0185e", "#8a6100", "#2e7d32", "#b13a0b", "#475569"];

function colorOf(vendor: string): string {
  if (VENDOR_COLOR[vendor]) return VENDOR_COLOR[vendor];
  let h = 0;
  for (const c of vendor) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos" }[c]};`);
}

/** One product's image: 320×160 (the SPA sets the same width/height on its <img>). */
export function productSvg(p: CatalogEntry): string {
  // The id is the large line; long ids (ORACLE-1Z0-1085-24) get a smaller size to fit 280 px.
  const idSize = Math.min(40, Math.floor(280 / (0.66 * p.productId.length)));
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">` +
    `<defs><linearGradient id="g" x2="1" y2="1"><stop offset="0" stop-color="#fff" stop-opacity=".22"/>` +
    `<stop offset=".65" stop-color="#fff" stop-opacity="0"/></linearGradient></defs>` +
    `<rect width="320" height="160" fill="${colorOf(p.vendor)}"/><rect width="320" height="160" fill="url(#g)"/>` +
    `<circle cx="292" cy="18" r="72" fill="#fff" fill-opacity=".08"/><circle cx="300" cy="150" r="38" fill="#fff" fill-opacity=".07"/>` +
    `<g fill="#fff" font-family="system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif">` +
    `<text x="20" y="34" font-size="13" font-weight="600" letter-spacing="1.4" fill-opacity=".92">${xmlEscape(p.vendor.toUpperCase())}</text>` +
    `<text x="20" y="102" font-size="${idSize}" font-weight="800">${xmlEscape(p.productId)}</text>` +
    `<text x="20" y="136" font-size="14" fill-opacity=".88">${xmlEscape(p.category)}</text></g></svg>`
  );
}

/** file name under images/products/ -> SVG, for every catalog entry (the name comes from imageUrl). */
export function productImages(): Map<string, string> {
  const catalog = JSON.parse(readFileSync(CATALOG, "utf8")) as CatalogEntry[];
  const out = new Map<string, string>();
  for (const p of catalog) {
    const expected = `/${PREFIX}${p.productId.toLowerCase()}.svg`;
    if (p.imageUrl !== expected) throw new Error(`catalog: ${p.productId} has imageUrl ${p.imageUrl}, expected ${expected}`);
    const name = expected.slice(PREFIX.length + 1);
    if (out.has(name)) throw new Error(`catalog: two products share the image ${name}`);
    out.set(name, productSvg(p));
  }
  return out;
}

export function productImagesPlugin(): Plugin {
  return {
    name: "contoso-product-images",
    buildStart() {
      this.addWatchFile(CATALOG);
    },
    generateBundle() {
      for (const [name, source] of productImages()) {
        this.emitFile({ type: "asset", fileName: PREFIX + name, source });
      }
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const m = /^\/images\/products\/([a-z0-9-]+\.svg)$/.exec((req.url ?? "").split("?")[0]);
        const svg = m && productImages().get(m[1]);
        if (!svg) return next();
        res.setHeader("content-type", "image/svg+xml");
        res.end(svg);
      });
    },
  };
}
