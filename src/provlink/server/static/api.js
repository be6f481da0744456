// The page's only network access: its own server's Marquez-compatible API.

const API = "/api/v1";

function apiKey() { return sessionStorage.getItem("provlink-api-key"); }

export const enc = (s) => encodeURIComponent(s);

/** GET an API path; a failed call throws an Error carrying the HTTP `status`. */
export async function api(path, params) {
  const url = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const headers = apiKey() ? { Authorization: "Bearer " + apiKey() } : {};
  const response = await fetch(url, { headers });
  if (response.status === 401) document.getElementById("key-form").hidden = false;
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(response.status === 401 ? "an API key with read scope is needed"
      : body.message || response.statusText);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export function useKey(key) { sessionStorage.setItem("provlink-api-key", key); }
