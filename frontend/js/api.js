// Same-origin fetch wrapper: bearer token from sessionStorage, asked once when the server answers 401.
const KEY = "copilot-token";

export class ApiError extends Error {}

export function token() {
  return sessionStorage.getItem(KEY);
}

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(input.value.trim()), { once: true });
    dialog.showModal();
  });
}

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  } catch { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

export async function request(path, options = {}, retried = false) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && !retried) {
    const given = await askToken();
    if (given) {
      sessionStorage.setItem(KEY, given);
      return request(path, options, true);
    }
  }
  if (!response.ok) throw new ApiError(await detail(response));
  return response;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

// Every item of a paged list ({items, next_cursor}), following the cursors to the last page.
export async function getAll(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await getJSON(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}&limit=500` : `${path}${sep}limit=500`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function postJSON(path, json = {}) {
  return (await request(path, { method: "POST", json })).json();
}

// Download through fetch (so the token is sent), saved under the server's file name.
export async function download(path, fallbackName) {
  const response = await request(path);
  const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: match ? match[1] : fallbackName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
