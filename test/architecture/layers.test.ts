/**
 * The import rules that keep lib/ readable as the architecture: entry points (cli/, web/) on top, then
 * ssh and session, then kernel, store and replay, then events, config and sys. A layer imports only
 * the layers listed for it; the events layer imports no Node or Bun module, so a browser can use it;
 * only kernel/ and sys/ call native code through bun:ffi.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "../support/harness.ts";

const LAYERS: Record<string, string[]> = {
  events: [],
  sys: ["errors"],
  config: ["errors", "events"],
  kernel: ["errors", "events", "sys"],
  store: ["errors", "events", "sys"],
  replay: ["errors", "events", "store"],
  session: ["errors", "events", "sys", "config", "kernel", "store"],
  ssh: ["errors", "events", "sys", "config", "kernel", "store", "session"],
  check: ["errors", "events", "sys", "config", "kernel", "ssh"],
};

/**
 * Entry points outside lib/ and what of lib/ each may use. The web server reads (store, replay)
 * and never records; its browser code (web/client) may use only the pure events layer.
 */
const ENTRY_POINTS: Record<string, string[]> = {
  web: ["errors", "events", "store", "replay"],
  "web/client": ["events"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : /\.tsx?$/.test(name) ? [path] : [];
  });
}

/** `lib/kernel/tracer.ts` → "kernel"; `lib/errors.ts` → "errors" */
function layerOf(file: string): string {
  const [top, layer] = relative(ROOT, file).split("/");
  if (top !== "lib") return top!;
  return layer!.replace(/\.ts$/, "");
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm)].map(
    (m) => (m[1] ?? m[2])!,
  );
}

const libFiles = sourceFiles(join(ROOT, "lib"));

describe("lib/ layers", () => {
  test("every folder of lib/ is a known layer", () => {
    const unknown = libFiles.map(layerOf).filter((layer) => layer !== "errors" && !(layer in LAYERS));
    expect([...new Set(unknown)]).toEqual([]);
  });

  test("each layer imports only the layers below it", () => {
    const violations: string[] = [];
    for (const file of libFiles) {
      const from = layerOf(file);
      for (const spec of importsOf(file).filter((s) => s.startsWith("."))) {
        const target = resolve(dirname(file), spec);
        if (!relative(ROOT, target).startsWith("lib/")) continue;
        const to = layerOf(target);
        if (to !== from && !(LAYERS[from] ?? []).includes(to))
          violations.push(`${relative(ROOT, file)} imports ${relative(ROOT, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  test("lib/events imports no Node or Bun module", () => {
    const platform = libFiles
      .filter((f) => layerOf(f) === "events")
      .flatMap((f) =>
        importsOf(f)
          .filter((s) => /^(node:|bun)/.test(s))
          .map((s) => `${relative(ROOT, f)}: ${s}`),
      );
    expect(platform).toEqual([]);
  });

  test("web/ uses only the lib/ layers listed for it; web/client no Node or Bun module", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(join(ROOT, "web"))) {
      const from = relative(ROOT, file).startsWith("web/client/") ? "web/client" : "web";
      for (const spec of importsOf(file)) {
        if (from === "web/client" && /^(node:|bun)/.test(spec)) violations.push(`${relative(ROOT, file)}: ${spec}`);
        if (!spec.startsWith(".")) continue;
        const target = relative(ROOT, resolve(dirname(file), spec));
        if (target.startsWith("lib/")) {
          if (!ENTRY_POINTS[from]!.includes(layerOf(join(ROOT, target))))
            violations.push(`${relative(ROOT, file)} imports ${target}`);
        } else if (!target.startsWith("web/")) violations.push(`${relative(ROOT, file)} imports ${target}`);
        else if (from === "web/client" && !target.startsWith("web/client/") && target !== "web/timeline-codes.ts")
          violations.push(`${relative(ROOT, file)} imports server code ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });

  test("bun:ffi only in lib/kernel and lib/sys", () => {
    const ffi = [...libFiles, ...sourceFiles(join(ROOT, "cli"))]
      .filter((f) => importsOf(f).includes("bun:ffi"))
      .map((f) => relative(ROOT, f))
      .filter((f) => !/^lib\/(kernel|sys)\//.test(f));
    expect(ffi).toEqual([]);
  });
});
