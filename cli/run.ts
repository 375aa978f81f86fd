/**
 * Runs a citty command tree the way an audit tool must behave: `--help` anywhere before `--`,
 * unknown flags rejected, and every failure one line on stderr with a non-zero exit.
 */
import { type ArgDef, type ArgsDef, type CommandDef, runCommand, showUsage } from "citty";
import { EsrError, errorMessage } from "../lib/errors.ts";
import { safeLine } from "../lib/events/safe-text.ts";

type AnyCommand = CommandDef<ArgsDef>;

async function resolve<T>(v: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

/** The names and aliases of a command's options (those `keep` accepts). */
async function optionNames(cmd: AnyCommand, keep: (def: ArgDef) => boolean = () => true): Promise<Set<string>> {
  const names = new Set<string>();
  for (const [name, def] of Object.entries((await resolve(cmd.args)) ?? {})) {
    if (!keep(def)) continue;
    names.add(name);
    for (const alias of [("alias" in def && def.alias) || []].flat()) names.add(alias);
  }
  return names;
}

/** Flags before `--` that the command does not define. */
async function unknownFlags(cmd: AnyCommand, args: string[]): Promise<string[]> {
  const known = await optionNames(cmd);
  known.add("help").add("h");
  return args
    .filter((a) => a.startsWith("-") && a !== "-")
    .map((a) => a.replace(/^--?(no-)?/, "").split("=")[0]!)
    .filter((name) => !known.has(name));
}

/**
 * The first option that takes a value but was given none: last on the line, followed by another
 * option, or empty (`--login ""` must not quietly mean "the default").
 */
async function emptyValue(cmd: AnyCommand, args: string[]): Promise<string | undefined> {
  const takesValue = await optionNames(cmd, (def) => def.type === "string");
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--?([^=]+)(=(.*))?$/.exec(a);
    if (!m || !takesValue.has(m[1]!)) continue;
    if (m[2] !== undefined) {
      if (m[3] === "") return m[1];
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value === "" || value.startsWith("--")) return m[1];
    i++;
  }
  return undefined;
}

export async function runCli(main: AnyCommand, rawArgs: string[]) {
  const dashdash = rawArgs.indexOf("--");
  const own = dashdash >= 0 ? rawArgs.slice(0, dashdash) : rawArgs;
  const subCommands = ((await resolve(main.subCommands)) ?? {}) as Record<
    string,
    AnyCommand | (() => Promise<AnyCommand>)
  >;
  const name = own.find((a) => !a.startsWith("-"));
  const sub = name && Object.hasOwn(subCommands, name) ? await resolve(subCommands[name]) : undefined;
  try {
    if (own.includes("--help") || own.includes("-h") || own.length === 0) {
      await showUsage(sub ?? main, sub ? main : undefined);
      process.exit(own.length === 0 ? 1 : 0);
    }
    if (own.includes("--version") && !sub) {
      console.log((await resolve(main.meta))?.version);
      return;
    }
    if (!sub) throw new EsrError(`unknown command ${JSON.stringify(name ?? own[0])} (see esr --help)`, 2);
    const unknown = await unknownFlags(sub, own.slice(own.indexOf(name!) + 1));
    if (unknown.length) throw new EsrError(`${name}: unknown option --${unknown[0]} (see esr ${name} --help)`, 2);
    const empty = await emptyValue(sub, own.slice(own.indexOf(name!) + 1));
    if (empty) throw new EsrError(`${name}: --${empty} needs a value (see esr ${name} --help)`, 2);
    await runCommand(main, { rawArgs });
  } catch (err) {
    fail(err);
  }
}

/**
 * Messages name what they were given (arguments, paths, user names), quoted with JSON.stringify,
 * which leaves C1, bidi and format characters raw: safeLine escapes those too.
 */
export function fail(err: unknown): never {
  if (err instanceof EsrError) {
    process.stderr.write(`esr: ${safeLine(err.message)}\n`);
    process.exit(err.exitCode);
  }
  // Not an expected failure: still one line, but say it is a bug so it gets reported.
  process.stderr.write(
    `esr: internal error: ${safeLine(errorMessage(err))}${process.env.ESR_DEBUG ? `\n${(err as Error)?.stack}` : " (ESR_DEBUG=1 for details)"}\n`,
  );
  process.exit(70);
}
