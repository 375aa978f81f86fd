/** The audit log: every event of every session, filtered on the server, full JSON on click. */
import { getJson } from "./api.ts";
import { safeLine } from "../../lib/events/safe-text.ts";
import { append, clear, formatTime, h } from "./dom.ts";
import { filterForm, query } from "./filters.ts";

interface Hit {
  event: Record<string, unknown> & { event: string; ei: number; sid?: string; time?: string };
  text: string;
}

const FIELDS = [
  { name: "from", label: "From (UTC)", type: "datetime-local" as const },
  { name: "to", label: "To (UTC)", type: "datetime-local" as const },
  { name: "type", label: "Type", type: "select" as const, options: ["", "command", "network", "disk", "session"] },
  { name: "user", label: "User" },
  { name: "login", label: "Login" },
  { name: "host", label: "Host" },
  { name: "program", label: "Program" },
  { name: "q", label: "Text", placeholder: "in path or argv, any case" },
  { name: "sid", label: "Session" },
];

const KIND_LABEL: Record<string, string> = {
  "session.command": "exec",
  "session.network": "connect",
  "session.disk": "open",
  "session.start": "start",
  "session.end": "end",
};

export async function searchPage(app: HTMLElement) {
  const params = new URLSearchParams(location.search);
  const data = await getJson<{ next?: string; ms: number; events: Hit[] }>(
    `/api/search?${query(params, [...FIELDS.map((f) => f.name), "after"])}`,
  );
  clear(app);
  const body = h("tbody");
  for (const { event: e, text } of data.events) {
    const detail = h(
      "tr",
      { class: "detail", hidden: true },
      h(
        "td",
        { colspan: 8 },
        e.sid &&
          h(
            "a",
            { href: `/sessions/${encodeURIComponent(String(e.sid))}?ei=${e.ei}`, class: "open-in-session" },
            "open in session",
          ),
        h("pre", { class: "json" }, JSON.stringify(e, null, 2)),
      ),
    );
    const row = h(
      "tr",
      { class: `hit kind-${(KIND_LABEL[e.event] ?? "other").replace(/\W/g, "")}` },
      h("td", {}, formatTime(e.time)),
      h("td", { class: "sid" }, String(e.sid ?? "").slice(0, 8)),
      h("td", {}, safeLine(String(e.server_hostname ?? ""))),
      h("td", {}, safeLine(String(e.login ?? ""))),
      h("td", {}, KIND_LABEL[e.event] ?? safeLine(e.event)),
      h("td", { class: "num" }, e.pid === undefined ? "" : String(e.pid)),
      h("td", {}, safeLine(String(e.program ?? ""))),
      h("td", { class: "text" }, safeLine(text)),
    );
    row.addEventListener("click", () => (detail.hidden = !detail.hidden));
    append(body, row, detail);
  }
  append(
    app,
    h("h1", {}, "Audit log ", h("small", {}, `${data.events.length} events in ${data.ms} ms`)),
    filterForm(FIELDS, params),
    h(
      "table",
      { class: "search" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Time (UTC)", "Session", "Host", "Login", "Kind", "PID", "Program", "What"].map((t) => h("th", {}, t)),
        ),
      ),
      body,
    ),
    data.events.length === 0 && h("p", {}, "No event matches."),
    olderLinks(params, data.next),
  );
}

/** Pages by key, as the store does: the newest page, and the one after the last event shown. */
function olderLinks(params: URLSearchParams, next: string | undefined): HTMLElement {
  const link = (after: string | undefined, text: string) => {
    const to = new URLSearchParams(params);
    if (after) to.set("after", after);
    else to.delete("after");
    return h("a", { href: `?${to}`, class: "page-link" }, text);
  };
  return h(
    "nav",
    { class: "pager" },
    params.has("after") && link(undefined, "← newest"),
    " ",
    next && link(next, "older →"),
  );
}
