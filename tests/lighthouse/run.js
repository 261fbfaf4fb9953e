#!/usr/bin/env node
// Lighthouse (its default mobile preset, simulated throttling) with Debian's chromium on the built
// shop (web/dist) served by the real local Functions host (tests/browser/lib/shop.js's
// startShop), page by page: the catalog, a product, the cart and the sign-in page.
//
// Asserted: accessibility, best practices and SEO >= 0.95 on every page (the score as Lighthouse
// shows it, rounded to two places). Reported only, as they depend on the machine's timing:
// performance (goal >= 0.95) and CLS (goal < 0.1), with LCP and TBT beside them.
// It prints every failing audit of a category (performance's only when it is under 1.0) with the
// offending elements, and writes JSON and HTML reports to artifacts/lighthouse/.
//
//   (cd web && npm ci && npm run build); (cd tests/browser && npm ci)
//   cd tests/lighthouse && npm ci && npm test
//
// CHROMIUM_BIN (default /usr/bin/chromium), HOST_BIN, SHOP_URL and HOST_LOG as in tests/browser;
// WEB_DIST=/abs/path/dist audits another build of the SPA.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..");
const OUT = path.join(ROOT, "artifacts", "lighthouse");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
// tests/browser/lib/shop.js's CHROMIUM_ARGS (it does not export them), which suit Lighthouse too.
const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const PAGES = [
  { name: "catalog", path: "/#/products" },
  { name: "product", path: "/#/product/AZ-104" },
  { name: "cart", path: "/#/cart" },
  { name: "signin", path: "/#/signin" },
];
const CATEGORIES = ["performance", "accessibility", "best-practices", "seo"];
const ASSERTED = { accessibility: 0.95, "best-practices": 0.95, seo: 0.95 };
const GOALS = { performance: 0.95, cls: 0.1 };
const MAX_ITEMS = 5; // offending elements shown per audit

/** The score as Lighthouse's report shows it (a whole percentage), as a fraction. */
const shown = (score) => (score == null ? null : Math.round(score * 100) / 100);
const fmt = (score) => (score == null ? "n/a" : shown(score).toFixed(2));

function loadShopHelpers() {
  try {
    return require("../browser/lib/shop");
  } catch (e) {
    if (e.code === "MODULE_NOT_FOUND" && /playwright-core/.test(e.message)) {
      throw new Error("tests/browser's dependencies are missing: (cd tests/browser && npm ci)");
    }
    throw e;
  }
}

/** What an audit's details name as the culprit: a DOM node, a URL, or a source location. */
function culprits(details) {
  if (!details) return [];
  // Insights wrap their tables in a list.
  if (details.type === "list") return details.items.flatMap((d) => culprits(d));
  if (!["table", "opportunity"].includes(details.type)) return [];
  const out = [];
  const describe = (item) => {
    const node = item.node?.type === "node" ? item.node : item.type === "node" ? item : null;
    if (node) {
      const label = node.nodeLabel ? ` "${String(node.nodeLabel).replace(/\s+/g, " ").slice(0, 60)}"` : "";
      const snippet = node.snippet ? ` ${String(node.snippet).slice(0, 160)}` : "";
      // axe's explanation ends with the measured problem (e.g. the contrast ratio and colours).
      const why = node.explanation ? `\n        why: ${node.explanation.trim().split("\n").pop().trim()}` : "";
      return `${node.selector || node.path || "?"}${label}${snippet}${why}`;
    }
    if (item.source?.url) return `${item.source.url}:${item.source.line ?? "?"}`;
    if (typeof item.url === "string") return item.url;
    return null;
  };
  for (const item of details.items ?? []) {
    const first = describe(item);
    if (first) out.push(first);
    for (const sub of item.subItems?.items ?? []) {
      const s = describe(sub);
      if (s) out.push(`  ${s}`);
    }
  }
  return out;
}

function failingAudits(lhr, categoryId) {
  const category = lhr.categories[categoryId];
  const failing = [];
  for (const ref of category.auditRefs) {
    const audit = lhr.audits[ref.id];
    if (!audit || audit.score == null) continue; // manual, informative, not applicable, errored
    if (["notApplicable", "manual", "informative", "error"].includes(audit.scoreDisplayMode)) continue;
    if (audit.score >= 1) continue;
    // Performance lists dozens of unweighted diagnostics; keep the weighted metrics and the
    // diagnostics that fail outright.
    if (categoryId === "performance" && ref.weight === 0 && audit.score >= 0.9) continue;
    failing.push({
      id: audit.id, title: audit.title, score: audit.score, weight: ref.weight,
      displayValue: audit.displayValue, items: culprits(audit.details),
    });
  }
  return failing.sort((a, b) => b.weight - a.weight || a.score - b.score);
}

function summarize(page, lhr, seconds) {
  const metric = (id) => lhr.audits[id];
  const scores = Object.fromEntries(CATEGORIES.map((c) => [c, lhr.categories[c]?.score ?? null]));
  return {
    page: page.name,
    url: lhr.finalDisplayedUrl || lhr.requestedUrl,
    seconds,
    runtimeError: lhr.runtimeError ? `${lhr.runtimeError.code}: ${lhr.runtimeError.message}` : null,
    runWarnings: lhr.runWarnings ?? [],
    scores,
    cls: metric("cumulative-layout-shift")?.numericValue ?? null,
    lcpMs: metric("largest-contentful-paint")?.numericValue ?? null,
    tbtMs: metric("total-blocking-time")?.numericValue ?? null,
    // Every category's audits that fail, also those of a category at 1.0 whose audit has weight 0
    // (Lighthouse shows them, but they do not count in the score); performance's only when it is
    // under 1.0, as its unweighted diagnostics are many.
    failing: Object.fromEntries(
      CATEGORIES.filter((c) => scores[c] != null && (c !== "performance" || shown(scores[c]) < 1))
        .map((c) => [c, failingAudits(lhr, c)])
        .filter(([, audits]) => audits.length > 0),
    ),
    // Audits Lighthouse could not compute (e.g. a trace this Lighthouse cannot read).
    errored: Object.values(lhr.audits)
      .filter((a) => a.scoreDisplayMode === "error")
      .map((a) => `${a.id}: ${a.errorMessage}`),
  };
}

function printTable(results) {
  const head = ["page", "perf", "a11y", "best-pr", "seo", "CLS", "LCP ms", "TBT ms", "s"];
  const rows = results.map((r) => [
    r.page, fmt(r.scores.performance), fmt(r.scores.accessibility), fmt(r.scores["best-practices"]),
    fmt(r.scores.seo), r.cls == null ? "n/a" : r.cls.toFixed(3), r.lcpMs == null ? "n/a" : Math.round(r.lcpMs),
    r.tbtMs == null ? "n/a" : Math.round(r.tbtMs), r.seconds.toFixed(1),
  ].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

function printFailing(r) {
  if (r.runtimeError) console.log(`\n[${r.page}] Lighthouse runtime error: ${r.runtimeError}`);
  for (const w of r.runWarnings) console.log(`[${r.page}] warning: ${w}`);
  for (const e of r.errored) console.log(`[${r.page}] audit error: ${e}`);
  for (const [category, audits] of Object.entries(r.failing)) {
    console.log(`\n[${r.page}] ${category} ${fmt(r.scores[category])}: audits under 1.0`);
    for (const a of audits) {
      const value = a.displayValue ? ` (${a.displayValue})` : "";
      const weight = a.weight === 0 ? "weight 0: not in the score" : `weight ${a.weight}`;
      console.log(`  - ${a.id}: ${a.title}${value} [score ${a.score.toFixed(2)}, ${weight}]`);
      for (const item of a.items.slice(0, MAX_ITEMS)) console.log(`      ${item}`);
      if (a.items.length > MAX_ITEMS) console.log(`      ... ${a.items.length - MAX_ITEMS} more in the report`);
    }
  }
}

async function main() {
  const started = Date.now();
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium, or set CHROMIUM_BIN`);
  }
  const { startShop, requireDist } = loadShopHelpers();
  if (process.env.WEB_DIST) {
    if (!fs.existsSync(path.join(process.env.WEB_DIST, "index.html"))) throw new Error(`WEB_DIST=${process.env.WEB_DIST} has no index.html`);
  } else if (!process.env.SHOP_URL) {
    requireDist();
  }
  const { default: lighthouse } = await import("lighthouse");
  const chromeLauncher = await import("chrome-launcher");

  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });

  // WEB_DIST audits another build of the SPA (the host serves it; tests/browser's default is web/dist).
  const shop = await startShop(process.env.WEB_DIST ? { WEB_DIST: path.resolve(process.env.WEB_DIST) } : {});
  let chrome;
  const results = [];
  try {
    chrome = await chromeLauncher.launch({
      chromePath: CHROMIUM,
      chromeFlags: CHROMIUM_ARGS,
      logLevel: "silent",
    });
    for (const page of PAGES) {
      const url = `${shop.url}${page.path}`;
      const t0 = Date.now();
      const runner = await lighthouse(url, {
        port: chrome.port,
        output: ["json", "html"],
        logLevel: "error",
        onlyCategories: CATEGORIES,
      });
      const seconds = (Date.now() - t0) / 1000;
      if (!runner) throw new Error(`Lighthouse returned nothing for ${url}`);
      const [json, html] = runner.report;
      fs.writeFileSync(path.join(OUT, `${page.name}.report.json`), json);
      fs.writeFileSync(path.join(OUT, `${page.name}.report.html`), html);
      const result = summarize(page, runner.lhr, seconds);
      results.push(result);
      console.log(`lighthouse: ${page.name} (${page.path}) audited in ${seconds.toFixed(1)} s`);
    }
  } finally {
    if (chrome) await chrome.kill();
    await shop.stop();
  }

  console.log(`\nLighthouse ${require("lighthouse/package.json").version}, mobile preset, ${CHROMIUM}; reports in ${path.relative(ROOT, OUT)}/\n`);
  printTable(results);
  for (const r of results) printFailing(r);

  const failures = [];
  const notes = [];
  for (const r of results) {
    if (r.runtimeError) failures.push(`${r.page}: Lighthouse could not audit the page (${r.runtimeError})`);
    for (const [category, min] of Object.entries(ASSERTED)) {
      const score = shown(r.scores[category]);
      if (score == null || score < min) failures.push(`${r.page}: ${category} ${fmt(r.scores[category])} < ${min.toFixed(2)}`);
    }
    const perf = shown(r.scores.performance);
    if (perf == null || perf < GOALS.performance) notes.push(`${r.page}: performance ${fmt(r.scores.performance)} (goal >= ${GOALS.performance.toFixed(2)})`);
    if (r.cls == null || r.cls >= GOALS.cls) notes.push(`${r.page}: CLS ${r.cls == null ? "n/a" : r.cls.toFixed(3)} (goal < ${GOALS.cls})`);
  }
  fs.writeFileSync(path.join(OUT, "summary.json"), `${JSON.stringify({ asserted: ASSERTED, goals: GOALS, results, failures, notes }, null, 2)}\n`);

  console.log("");
  for (const n of notes) console.log(`lighthouse: reported, not asserted: ${n}`);
  for (const f of failures) console.log(`lighthouse: FAIL ${f}`);
  const total = ((Date.now() - started) / 1000).toFixed(1);
  // One check per page and asserted category; a page Lighthouse could not audit fails them all.
  const checks = PAGES.length * Object.keys(ASSERTED).length;
  const failed = failures.filter((f) => !f.includes("could not audit")).length;
  console.log(`lighthouse: ${PAGES.length} pages in ${total} s`);
  console.log(`lighthouse: ${checks - failed} passed, ${failed} failed`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`lighthouse: ${e.stack || e.message}`);
    process.exit(1);
  },
);
