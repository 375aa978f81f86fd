/** The front end: one page per path, each drawn from the API. */
import "@xterm/xterm/css/xterm.css";
import { LoginNeeded, loginForm } from "./api.ts";
import { clear, h } from "./dom.ts";
import { searchPage } from "./search-page.ts";
import { sessionPage } from "./session-page.ts";
import { sessionsPage } from "./sessions-page.ts";

async function route(app: HTMLElement) {
  const path = location.pathname;
  const session = /^\/sessions\/([^/]+)$/.exec(path);
  if (session) await sessionPage(app, decodeURIComponent(session[1]!));
  else if (path === "/search") await searchPage(app);
  else await sessionsPage(app);
}

const app = document.getElementById("app")!;
route(app).catch((err) => {
  clear(app);
  app.appendChild(err instanceof LoginNeeded ? loginForm() : h("p", { class: "error" }, String(err?.message ?? err)));
});
