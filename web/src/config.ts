// Runtime configuration, fetched from `config.json` next to index.html at start-up, so one build
// runs anywhere: locally the same-origin defaults below, in Azure the deployment overwrites it.

export interface DevAuthConfig {
  mode: "dev";
}

export interface OidcAuthConfig {
  mode: "oidc";
  authority: string;
  clientId: string;
  scope: string;
  /** Defaults to the SPA's own URL (without hash or query). */
  redirectUri?: string;
}

export interface AppConfig {
  /** Prefix for /api/... and /dev/token; "" = same origin. */
  apiBaseUrl: string;
  /** The SignalR hub; relative URLs resolve against the page. */
  hubUrl: string;
  auth: DevAuthConfig | OidcAuthConfig;
}

export const DEFAULT_CONFIG: AppConfig = {
  apiBaseUrl: "",
  hubUrl: "/hubs/order-status",
  auth: { mode: "dev" },
};

function normalize(raw: unknown): AppConfig {
  if (!raw || typeof raw !== "object") return DEFAULT_CONFIG;
  const r = raw as Record<string, unknown>;
  const apiBaseUrl = typeof r.apiBaseUrl === "string" ? r.apiBaseUrl.replace(/\/+$/, "") : "";
  const hubUrl = typeof r.hubUrl === "string" && r.hubUrl ? r.hubUrl : DEFAULT_CONFIG.hubUrl;
  let auth: AppConfig["auth"] = { mode: "dev" };
  const a = r.auth as Record<string, unknown> | undefined;
  if (a && a.mode === "oidc") {
    if (typeof a.authority === "string" && typeof a.clientId === "string") {
      auth = {
        mode: "oidc",
        authority: a.authority.replace(/\/+$/, ""),
        clientId: a.clientId,
        scope: typeof a.scope === "string" && a.scope ? a.scope : "openid profile",
        redirectUri: typeof a.redirectUri === "string" ? a.redirectUri : undefined,
      };
    } else {
      console.warn("config.json: auth.mode is oidc but authority/clientId are missing; using dev sign-in");
    }
  }
  return { apiBaseUrl, hubUrl, auth };
}

export async function loadConfig(): Promise<AppConfig> {
  try {
    const res = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return normalize(await res.json());
  } catch (e) {
    console.warn("config.json could not be loaded; using the same-origin defaults", e);
    return DEFAULT_CONFIG;
  }
}
