/**
 * `esr serve`: the web UI's HTTP server. Read-only: every route is a GET, but the login. Every
 * response carries the same security headers; the data API needs the credential (web/auth.ts).
 * It reads only through lib/store's EventSource, so the data dir and the fleet store are served
 * by the same code.
 * The front end is web/client/, bundled into the executable by `bun build --compile`.
 */
import { basename, join } from "node:path";
import { UUID_RE } from "../lib/store/file/audit-log.ts";
import { UnknownSession, type EventSource } from "../lib/store/store.ts";
import { EsrError, errorMessage } from "../lib/errors.ts";
import page from "./client/index.html";
import { Access, COOKIE } from "./auth.ts";
import { parseSearchQuery, parseSessionFilter } from "./search.ts";
import { eventText, SessionViews, sessionTree } from "./session-view.ts";
import type { SessionRow } from "./timeline-codes.ts";
import type { SessionSummary } from "../lib/store/session-summary.ts";
import { shownVerdicts, verdictFootnote } from "../lib/store/verdicts.ts";

/**
 * No inline script, nothing from elsewhere. Styles may be inline: the terminal widget sets its
 * cell styles from script; styles cannot run code, and no recorded string ever becomes markup.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), clipboard-write=()",
};

const SESSIONS_PER_PAGE = 50;
const SEARCH_PER_PAGE = 100;
const EVENTS_MAX_PAGE = 500;

interface Asset {
  body: Blob;
  type: string;
}

/** The bundled front end by URL path: embedded in the executable, or bundled now when run from source. */
async function frontEnd(): Promise<{ html: Blob; assets: Map<string, Asset> }> {
  const assets = new Map<string, Asset>();
  if (page.files) {
    let html: Blob | undefined;
    for (const f of page.files) {
      if (f.loader === "html") html = Bun.file(f.path);
      else assets.set(`/${basename(f.path)}`, { body: Bun.file(f.path), type: f.headers["content-type"] });
    }
    if (html) return { html, assets };
  }
  const built = await Bun.build({
    entrypoints: [join(import.meta.dir, "client", "index.html")],
    minify: true,
    publicPath: "/",
  });
  if (!built.success) throw new EsrError(`serve: cannot bundle the web front end: ${built.logs.join("; ")}`);
  let html: Blob | undefined;
  for (const out of built.outputs) {
    if (out.path.endsWith(".html")) html = out;
    else assets.set(`/${basename(out.path)}`, { body: out, type: out.type });
  }
  if (!html) throw new EsrError("serve: the web front end has no page");
  return { html, assets };
}

export interface ServeOptions {
  source: EventSource;
  hostname: string;
  port: number;
  tls?: { cert: string; key: string };
  access: Access;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function intParam(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const v = params.get(name);
  if (v === null || v === "") return fallback;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, `${name}: not a number`);
  return Math.min(Number(v), max);
}

function sidOf(value: string | undefined): string {
  if (!value || !UUID_RE.test(value)) throw new HttpError(404, "no such session");
  return value;
}

/** The status of an error while answering: the store failing is not the request's fault. */
function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof UnknownSession) return 404;
  if (err instanceof EsrError) return err.exitCode === 2 ? 400 : 503;
  return 500;
}

export async function serve(opts: ServeOptions) {
  const { html, assets } = await frontEnd();
  const views = new SessionViews(opts.source);
  // A finished session's marks never change; a running one's are counted again at each listing.
  const finishedFlags = new Map<string, { unseen: number; truncated: number }>();
  const secure = Boolean(opts.tls);

  /** The two marks of the sessions list, from the session's view. */
  const sessionFlags = async (sid: string) => {
    const known = finishedFlags.get(sid);
    if (known) return known;
    const { meta } = await views.get(sid);
    const flags = { unseen: meta.unseen, truncated: meta.truncated };
    if (meta.end) finishedFlags.set(sid, flags);
    return flags;
  };

  /**
   * One session at a time: each view holds a whole session's events while it is built. Verified
   * once per listing, for its page of rows, never cached: a file or row changed while the server
   * runs must show.
   */
  const rowsWithFlags = async (rows: SessionSummary[]) => {
    const withFlags: SessionRow[] = [];
    const verdicts = await shownVerdicts(
      opts.source,
      rows.map((s) => s.sid),
    );
    for (const [i, s] of rows.entries()) {
      const v = verdicts[i];
      const verify = v && { verify: v.status, verifyDetail: v.detail, verifyStoredKey: v.storedKey };
      withFlags.push({ ...s, ...(await sessionFlags(s.sid)), ...verify });
    }
    return { rows: withFlags, verifyNote: verdictFootnote(verdicts) };
  };

  const listSessions = async (params: URLSearchParams) => {
    const f = parseSessionFilter(params);
    const text = f.text?.toLowerCase();
    const all = (await opts.source.sessions()).sessions.filter((s) => {
      const t = Date.parse(s.start ?? "");
      if (f.from !== undefined && !(t >= f.from)) return false;
      if (f.to !== undefined && !(t <= f.to)) return false;
      if (f.host && s.host !== f.host) return false;
      if (f.user && s.user !== f.user && s.login !== f.user) return false;
      if (text && !s.sid.includes(text) && !s.command.join(" ").toLowerCase().includes(text)) return false;
      return true;
    });
    const pageNo = intParam(params, "page", 0, 1e6);
    const { rows, verifyNote } = await rowsWithFlags(
      all.slice(pageNo * SESSIONS_PER_PAGE, (pageNo + 1) * SESSIONS_PER_PAGE),
    );
    return { total: all.length, page: pageNo, perPage: SESSIONS_PER_PAGE, sessions: rows, verifyNote };
  };

  const api = async (url: URL): Promise<unknown> => {
    const params = url.searchParams;
    const parts = url.pathname.split("/").slice(2); // after /api/
    if (parts[0] === "sessions" && parts.length === 1) return listSessions(params);
    if (parts[0] === "search" && parts.length === 1) {
      const t0 = performance.now();
      const result = await opts.source.search(parseSearchQuery(params, SEARCH_PER_PAGE));
      return {
        next: result.next,
        ms: Math.round(performance.now() - t0),
        events: result.events.map((e) => ({ event: e, text: eventText(e) })),
      };
    }
    if (parts[0] === "sessions" && parts.length >= 2) {
      const view = await views.get(sidOf(parts[1]));
      if (parts.length === 2)
        return {
          meta: view.meta,
          index: view.index,
          frames: view.output && { ms: view.output.ms, length: view.output.length },
        };
      if (parts[2] === "output" && parts.length === 3) {
        if (!view.output) throw new HttpError(404, "no terminal output in this session");
        return new Response(view.output.bytes as Uint8Array<ArrayBuffer>, {
          headers: { "Content-Type": "application/octet-stream" },
        });
      }
      if (parts[2] === "events" && parts.length === 3) {
        const offset = intParam(params, "offset", 0, view.list.length);
        const limit = intParam(params, "limit", 200, EVENTS_MAX_PAGE);
        return {
          offset,
          total: view.list.length,
          events: view.list.slice(offset, offset + limit).map((e) => ({ event: e, text: eventText(e) })),
        };
      }
      if (parts[2] === "tree" && parts.length === 3) return sessionTree(view);
    }
    throw new HttpError(404, "no such API");
  };

  const respond = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/api/login") {
      if (req.method !== "POST") throw new HttpError(405, "POST only");
      // Only the page itself may log in: a form elsewhere cannot send JSON without a preflight.
      if (!req.headers.get("content-type")?.startsWith("application/json")) throw new HttpError(415, "JSON only");
      const body = (await req.json().catch(() => ({}))) as { token?: unknown };
      if (!opts.access.checkToken(body.token)) throw new HttpError(401, "wrong token");
      const cookie = `${COOKIE}=${opts.access.login()}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200${secure ? "; Secure" : ""}`;
      return Response.json({ ok: true }, { headers: { "Set-Cookie": cookie } });
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "read-only");
    if (url.pathname.startsWith("/api/")) {
      if (!opts.access.allows(req)) throw new HttpError(401, "log in first");
      const result = await api(url);
      const res = result instanceof Response ? result : Response.json(result);
      res.headers.set("Cache-Control", "no-store");
      return res;
    }
    const asset = assets.get(url.pathname);
    if (asset) return new Response(asset.body, { headers: { "Content-Type": asset.type } });
    if (url.pathname === "/" || url.pathname === "/search" || /^\/sessions\/[^/]+$/.test(url.pathname))
      return new Response(html, {
        headers: { "Content-Type": "text/html;charset=utf-8", "Cache-Control": "no-store" },
      });
    throw new HttpError(404, "not found");
  };

  const gzip = (req: Request, res: Response): Promise<Response> | Response => {
    const type = res.headers.get("content-type") ?? "";
    if (!/gzip/.test(req.headers.get("accept-encoding") ?? "") || !/json|octet-stream|javascript|css/.test(type))
      return res;
    return res.arrayBuffer().then((body) => {
      if (body.byteLength < 1024) return new Response(body, res);
      const headers = new Headers(res.headers);
      headers.set("Content-Encoding", "gzip");
      headers.set("Vary", "Accept-Encoding");
      return new Response(Bun.gzipSync(new Uint8Array(body), { level: 1 }), { status: res.status, headers });
    });
  };

  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    // Bun would otherwise share the port with whatever listens there already, splitting the requests.
    reusePort: false,
    tls: opts.tls && { cert: Bun.file(opts.tls.cert), key: Bun.file(opts.tls.key) },
    development: false,
    async fetch(req) {
      let res: Response;
      try {
        res = await gzip(req, await respond(req));
      } catch (err) {
        const status = statusOf(err);
        if (status >= 500)
          process.stderr.write(`esr serve: ${req.method} ${new URL(req.url).pathname}: ${errorMessage(err)}\n`);
        res = Response.json({ error: status === 500 ? "internal error" : errorMessage(err) }, { status });
      }
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.headers.set(k, v);
      if (secure) res.headers.set("Strict-Transport-Security", "max-age=31536000");
      return res;
    },
  });
  return server;
}
