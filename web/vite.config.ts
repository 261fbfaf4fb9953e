import { defineConfig } from "vite";
import { productImagesPlugin } from "./product-images";

// `npm run dev` serves the SPA on http://127.0.0.1:5173 and proxies the API, the dev token and
// the SignalR hub to a locally running Functions host (scripts/run) on 7071. Point the proxy
// elsewhere with API_TARGET / HUB_TARGET (e.g. a standalone signalr-hub on 7072).
const apiTarget = process.env.API_TARGET || "http://127.0.0.1:7071";
const hubTarget = process.env.HUB_TARGET || apiTarget;

export default defineConfig({
  // Relative asset URLs: the built SPA works from any folder of any static host.
  base: "./",
  // dist/images/products/{id}.svg, one per catalog entry (the catalog's imageUrl).
  plugins: [productImagesPlugin()],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: {
    host: "127.0.0.1",
    port: 5173,
    proxy: {
      "/api": { target: apiTarget, changeOrigin: false },
      "/dev": { target: apiTarget, changeOrigin: false },
      "/hubs": { target: hubTarget, changeOrigin: false, ws: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
});
