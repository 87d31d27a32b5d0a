// The HTTP API of API.md, on the page's own origin (the local server, or `artreg ui`, which signs
// each call with the user's AWS credentials: the page never holds any).

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

const enc = encodeURIComponent;

export const paths = {
  projects: () => "/v1/projects",
  artifacts: (p) => `/v1/projects/${enc(p)}/artifacts`,
  artifact: (p, n) => `/v1/projects/${enc(p)}/artifacts/${enc(n)}`,
  versions: (p, n) => `${paths.artifact(p, n)}/versions`,
  version: (p, n, ref) => `${paths.versions(p, n)}/${enc(ref)}`,
  files: (p, n, ref) => `${paths.version(p, n, ref)}/files`,
  // each segment of a file's path encoded alone: the route takes the rest of the path as the file's
  file: (p, n, ref, path) => `${paths.files(p, n, ref)}/${path.split("/").map(enc).join("/")}`,
  lineage: (p, n, ref) => `${paths.version(p, n, ref)}/lineage`,
  history: (p, n, alias) => `${paths.artifact(p, n)}/aliases/${enc(alias)}/history`,
  run: (p, runId) => `/v1/projects/${enc(p)}/runs/${enc(runId)}`,
  resolve: (p, n, ref) => `/v1/resolve/${enc(p)}/${enc(n)}@${enc(ref)}`,
};

/** GETs an API path with query parameters (empty ones left out); answers the JSON body. */
export async function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") query.set(key, value);
  const url = query.toString() ? `${path}?${query}` : path;
  let response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the registry did not answer (${error.message})`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`, error.details);
  }
  return body;
}

let config = null;

/** Where the API really is, for the commands the page shows: `artreg ui` says so in /ui/config.json
 * (the deployed URL and its region); served by the registry itself, the page's own origin is the API. */
export async function apiConfig() {
  if (config) return config;
  try {
    const response = await fetch("config.json", { headers: { accept: "application/json" } });
    if (response.ok) config = await response.json();
  } catch {
    // no config: the registry serves the page itself
  }
  config = config || { api_url: window.location.origin, signed: false, region: null };
  return config;
}
