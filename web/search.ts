/**
 * The filters of the sessions list and of the audit log page, from URL parameters. The audit log
 * is searched by the store (lib/store's `EventSource.search`: the data dir's daily files, or the
 * fleet store's indexes), so it means what `esr search` means; a bad parameter is one clear error.
 */
import { EsrError } from "../lib/errors.ts";
import { UUID_RE } from "../lib/store/file/audit-log.ts";
import { splitKey, type SearchQuery } from "../lib/store/store.ts";

export interface SessionFilter {
  from?: number;
  to?: number;
  host?: string;
  /** Matches `user` or `login`. */
  user?: string;
  /** Text in the command or the session id. */
  text?: string;
}

const TYPE_EVENTS: Record<string, string[]> = {
  command: ["session.command"],
  network: ["session.network"],
  disk: ["session.disk"],
  session: ["session.start", "exec", "session.end", "resize"],
};

/** A time as the page's datetime-local fields give it (UTC without a zone), or RFC 3339. */
function timeParam(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (!v) return undefined;
  const t = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(t)) throw new EsrError(`${name}: not a time: ${JSON.stringify(v.slice(0, 40))}`, 2);
  return t;
}

function textParam(params: URLSearchParams, name: string): string | undefined {
  return params.get(name)?.trim() || undefined;
}

export function parseSessionFilter(params: URLSearchParams): SessionFilter {
  return {
    from: timeParam(params, "from"),
    to: timeParam(params, "to"),
    host: textParam(params, "host"),
    user: textParam(params, "user"),
    text: textParam(params, "q"),
  };
}

/** The audit log's query: `to` includes its instant, as the sessions list's does; `after` pages. */
export function parseSearchQuery(params: URLSearchParams, limit: number): SearchQuery {
  const type = textParam(params, "type");
  if (type && !(type in TYPE_EVENTS) && !Object.values(TYPE_EVENTS).flat().includes(type))
    throw new EsrError(`type: unknown event type ${JSON.stringify(type.slice(0, 40))}`, 2);
  const sid = textParam(params, "sid");
  if (sid && !UUID_RE.test(sid)) throw new EsrError(`sid: not a session id: ${JSON.stringify(sid.slice(0, 40))}`, 2);
  const after = textParam(params, "after");
  if (after && !splitKey(after)) throw new EsrError("after: not a key of a previous page", 2);
  const from = timeParam(params, "from");
  const to = timeParam(params, "to");
  return {
    since: from === undefined ? undefined : new Date(from).toISOString(),
    until: to === undefined ? undefined : new Date(to + 1).toISOString(),
    types: type ? (TYPE_EVENTS[type] ?? [type]) : undefined,
    user: textParam(params, "user"),
    login: textParam(params, "login"),
    host: textParam(params, "host"),
    program: textParam(params, "program"),
    text: textParam(params, "q"),
    sid,
    after,
    limit,
  };
}
