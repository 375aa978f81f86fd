/** The sessions list: newest first, filtered and paginated on the server. */
import { getJson } from "./api.ts";
import { safeLine } from "../../lib/events/safe-text.ts";
import { append, clear, formatDuration, formatTime, h } from "./dom.ts";
import { filterForm, pager, query } from "./filters.ts";
import type { SessionRow } from "../timeline-codes.ts";

const FIELDS = [
  { name: "from", label: "From (UTC)", type: "datetime-local" as const },
  { name: "to", label: "To (UTC)", type: "datetime-local" as const },
  { name: "host", label: "Host" },
  { name: "user", label: "User" },
  { name: "q", label: "Text", placeholder: "command or session id" },
];

export async function sessionsPage(app: HTMLElement) {
  const params = new URLSearchParams(location.search);
  const data = await getJson<{
    total: number;
    page: number;
    perPage: number;
    sessions: SessionRow[];
    verifyNote?: string;
  }>(
    `/api/sessions?${query(
      params,
      FIELDS.map((f) => f.name),
    )}`,
  );
  clear(app);
  const rows = data.sessions.map((s) => {
    const lost = s.lost.command + s.lost.disk + s.lost.network;
    const duration = s.start && s.end ? formatDuration(Date.parse(s.end) - Date.parse(s.start)) : "running";
    const flags = h(
      "td",
      { class: "flags" },
      s.unseen > 0 &&
        h(
          "span",
          { class: "flag unseen", title: "commands ran that never appeared on the screen" },
          `${s.unseen} never shown`,
        ),
      lost > 0 && h("span", { class: "flag lost", title: "events the kernel could not deliver" }, `${lost} lost`),
      s.truncated > 0 &&
        h(
          "span",
          { class: "flag truncated", title: "arguments or paths cut at the recording limit" },
          `${s.truncated} truncated`,
        ),
      verifyFlag(s),
      s.warnings > 0 &&
        h("span", { class: "flag warning", title: "parts of the recording could not be read" }, "damaged"),
    );
    return h(
      "tr",
      { class: "session-row", "data-sid": s.sid },
      h("td", {}, h("a", { href: `/sessions/${encodeURIComponent(s.sid)}`, class: "sid" }, s.sid.slice(0, 8))),
      h("td", {}, safeLine(s.host ?? "?")),
      h("td", {}, safeLine(s.login ?? "?"), s.user && s.user !== s.login ? ` (${safeLine(s.user)})` : ""),
      h("td", {}, formatTime(s.start)),
      h("td", {}, duration),
      h("td", { class: "command" }, safeLine(s.command.join(" "))),
      h("td", { class: "num" }, s.counts.command),
      h("td", { class: "num" }, s.counts.network),
      h("td", { class: "num" }, s.counts.disk),
      flags,
    );
  });
  append(
    app,
    h("h1", {}, "Sessions ", h("small", {}, `${data.total} in all`)),
    filterForm(FIELDS, params),
    h(
      "table",
      { class: "sessions" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "Session",
            "Host",
            "Login (user)",
            "Start (UTC)",
            "Duration",
            "Command",
            "Exec",
            "Net",
            "Files",
            "Marks",
          ].map((t) => h("th", {}, t)),
        ),
      ),
      h("tbody", {}, ...rows),
    ),
    rows.length === 0 && h("p", {}, "No session matches."),
    data.verifyNote !== undefined && h("p", { class: "verify-note" }, safeLine(data.verifyNote)),
    pager(params, data.page, (data.page + 1) * data.perPage < data.total),
  );
}

/** esr verify's verdict: its word, `*` when it trusted the store's own key (the note says so), its line on hover. */
function verifyFlag(s: SessionRow) {
  if (s.verify === undefined) return false;
  const star = s.verifyStoredKey ? "*" : "";
  const title = `esr verify: ${safeLine(`${s.verify}: ${s.verifyDetail ?? ""}`)}`;
  if (s.verify === "whole") return h("span", { class: "flag verified", title }, `verified${star}`);
  const kind = s.verify === "error" ? "verify-error" : "not-verified";
  return h("span", { class: `flag ${kind}`, title }, `verify: ${s.verify}${star}`);
}
