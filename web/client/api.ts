/** The server's JSON API; a 401 shows the login form instead of the page. */
import { h } from "./dom.ts";

export class LoginNeeded extends Error {}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { credentials: "same-origin" });
  if (res.status === 401) throw new LoginNeeded();
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(String((body as { error?: unknown }).error ?? `HTTP ${res.status}`));
  return body as T;
}

export async function getBytes(path: string): Promise<Uint8Array> {
  const res = await fetch(path, { credentials: "same-origin" });
  if (res.status === 401) throw new LoginNeeded();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export function loginForm(): HTMLElement {
  const input = h("input", { type: "password", name: "token", id: "token", autocomplete: "off", size: 50 });
  const message = h("p", { class: "error" });
  const form = h(
    "form",
    {
      id: "login",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const res = await fetch("/api/login", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: input.value.trim() }),
        });
        if (res.ok) location.reload();
        else message.textContent = "Wrong token.";
      },
    },
    h("h1", {}, "Log in"),
    h("p", {}, "The access token is printed by esr serve at start, and kept in its token file (root only)."),
    h("label", { for: "token" }, "Token "),
    input,
    " ",
    h("button", { type: "submit" }, "Log in"),
    message,
  );
  return form;
}
