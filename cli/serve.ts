import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { EsrError, errorMessage } from "../lib/errors.ts";
import { Access } from "../web/auth.ts";
import { serve as startServer } from "../web/server.ts";
import { cliConfig, configArg, dataDirArg, eventSource, fromArg } from "./common.ts";

export const DEFAULT_LISTEN = "127.0.0.1:3080";
export const DEFAULT_TOKEN_FILE = "/run/esr/serve-token";

/** `127.0.0.1:3080`, `[::1]:3080`, `:3080` (every address); port 0 picks a free one. */
export function parseListen(value: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535))
    throw new EsrError(
      `serve: --listen must be ADDRESS:PORT (e.g. ${DEFAULT_LISTEN}), not ${JSON.stringify(value)}`,
      2,
    );
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export const serve = defineCommand({
  meta: {
    name: "serve",
    description: "Serve the web UI: sessions, audit log search, playback with the kernel's events",
  },
  args: {
    ...configArg,
    ...dataDirArg,
    ...fromArg,
    listen: { type: "string", valueHint: "ADDR:PORT", description: `where to listen (default ${DEFAULT_LISTEN})` },
    "tls-cert": { type: "string", valueHint: "FILE", description: "serve HTTPS with this certificate (PEM)" },
    "tls-key": { type: "string", valueHint: "FILE", description: "the certificate's private key (PEM)" },
    "token-file": {
      type: "string",
      valueHint: "FILE",
      description: `where the access token is written, root-only (default ${DEFAULT_TOKEN_FILE})`,
    },
  },
  async run({ args }) {
    if (args._.length) throw new EsrError(`serve: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const { hostname, port } = parseListen(args.listen ?? DEFAULT_LISTEN);
    if (Boolean(args["tls-cert"]) !== Boolean(args["tls-key"]))
      throw new EsrError("serve: --tls-cert and --tls-key go together", 2);
    for (const file of [args["tls-cert"], args["tls-key"]])
      if (file && !existsSync(file)) throw new EsrError(`serve: cannot read ${file}`, 2);
    if (args.from !== undefined && args["data-dir"] !== undefined)
      throw new EsrError("serve: --from or --data-dir, not both: the UI serves one store", 2);
    const config = cliConfig(process.argv, args["data-dir"]);
    const source = eventSource(config, args);
    // Asked once before listening, so that a store that cannot be read is one line at start.
    try {
      await source.sessions({ limit: 1 });
    } catch (err) {
      await source.close();
      throw err;
    }
    const access = new Access();
    const tokenFile = args["token-file"] ?? DEFAULT_TOKEN_FILE;
    const tls = args["tls-cert"] ? { cert: args["tls-cert"], key: args["tls-key"]! } : undefined;
    let server;
    try {
      server = await startServer({ source, hostname, port, tls, access });
    } catch (err) {
      await source.close();
      if (err instanceof EsrError) throw err;
      throw new EsrError(`serve: cannot listen on ${hostname}:${port}: ${errorMessage(err)}`);
    }
    // Only once listening: a second instance that cannot start leaves the running one's token alone.
    try {
      access.saveToken(tokenFile);
    } catch (err) {
      void server.stop(true);
      await source.close();
      throw new EsrError(`serve: cannot write the token to ${tokenFile}: ${errorMessage(err)}`);
    }
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    process.stderr.write(
      `esr: serving ${source.location} on ${tls ? "https" : "http"}://${host}:${server.port}/\n` +
        `esr: access token (also in ${tokenFile}): ${access.token}\n`,
    );
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const)
        process.once(signal, () => {
          void server.stop(true);
          resolve();
        });
    });
    await source.close();
  },
});
