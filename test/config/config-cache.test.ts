/**
 * The parsed-config cache (lib/config/config-cache.ts): real files in a real directory, as root;
 * other host names through a real UTS namespace, the compiled esr through its own cache directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cacheKey, cachedConfig, CONFIG_CACHE_DIR, entryPath, MAX_ENTRIES } from "../../lib/config/config-cache.ts";
import { ConfigError, loadConfig, parseConfig, type ConfigSource } from "../../lib/config/config.ts";
import { errorOf } from "../support/config-parse.ts";
import { ESR, FIXTURES, ROOT, sessionsDir, tempDir } from "../support/harness.ts";

const CONFIG_FIXTURES = join(FIXTURES, "config");
const FIXTURE_FILES = ["teleport.yaml", "roles.yaml", "override.yaml"].map((f) => join(CONFIG_FIXTURES, f));

/** Every kind of value the config holds: both Maps, lists, optional keys, an anchor. */
const RICH = `teleport:
  nodename: &n rich-node
  storage:
    audit_events_uri: ["postgresql://esr@db/esr", "file:///var/lib/esr"]
    audit_sessions_uri: "file:///srv/sessions"
    retention_period: 90d
esr:
  integrity: { checkpoint_interval: 5s, checkpoint_events: 500, epoch_length: 1h }
  disk_filter: { ignore_path_prefixes: [/usr/lib/, /etc/ld.so.cache] }
auth_service: { cluster_name: *n }
ssh_service:
  enhanced_recording: { enabled: yes, network_buffer_size: 16, root_path: /rich }
---
kind: role
metadata: { name: auditors }
spec: { options: { enhanced_recording: [disk, command] } }
---
kind: user
metadata: { name: carol }
spec: { roles: [auditors] }
`;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = tempDir("esr-config-cache-");
  dirs.push(dir);
  return dir;
}

/** cachedConfig with a parser that counts its calls: a hit is a load that did not parse. */
function counting(cacheDir: string) {
  let parses = 0;
  const load = (sources: ConfigSource[]) =>
    cachedConfig(cacheDir, sources, (s) => {
      parses++;
      return parseConfig(s);
    });
  return { load, parses: () => parses };
}

function sourcesOf(texts: Record<string, string>): ConfigSource[] {
  return Object.entries(texts).map(([name, text]) => ({ name, text }));
}

/** The entry's two lines, the second changed by `edit` and re-summed: what only root could write. */
function forgeEntry(path: string, edit: (body: Record<string, unknown>) => void): void {
  const [header, body] = readFileSync(path, "utf8").split("\n") as [string, string];
  const config = JSON.parse(body);
  edit(config);
  const text = JSON.stringify(config);
  const sha256 = new Bun.CryptoHasher("sha256").update(text).digest("hex");
  writeFileSync(path, `${JSON.stringify({ ...JSON.parse(header), sha256 })}\n${text}`);
}

describe("hits", () => {
  test("a hit is deep-equal to a fresh parse, Maps included, and does not parse", () => {
    const dir = join(scratch(), "cache");
    const { load, parses } = counting(dir);
    for (const sources of [
      sourcesOf({ "rich.yaml": RICH }),
      FIXTURE_FILES.map((name) => ({ name, text: readFileSync(name, "utf8") })),
    ]) {
      const fresh = parseConfig(sources);
      const before = parses();
      expect(load(sources)).toEqual(fresh);
      expect(parses()).toBe(before + 1);
      const hit = load(sources);
      expect(parses()).toBe(before + 1);
      expect(hit).toEqual(fresh);
      expect(hit.roles).toBeInstanceOf(Map);
      expect(hit.users).toBeInstanceOf(Map);
    }
    const rich = load(sourcesOf({ "rich.yaml": RICH }));
    expect(rich.users.get("carol")).toEqual(["auditors"]);
    expect(rich.storage.auditSessionsUri).toBe("file:///srv/sessions");
  });

  test("entries are 0600 in a 0700 directory, one per config", () => {
    const dir = join(scratch(), "cache");
    const sources = sourcesOf({ "rich.yaml": RICH });
    counting(dir).load(sources);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([`${cacheKey(sources)}.json`]);
    expect(statSync(entryPath(dir, cacheKey(sources))).mode & 0o777).toBe(0o600);
  });

  test("loadConfig reads the files and uses the cache only when asked to", () => {
    const dir = scratch();
    const file = join(dir, "esr.yaml");
    writeFileSync(file, RICH);
    const cacheDir = join(dir, "cache");
    expect(loadConfig([file])).toEqual(parseConfig([{ name: file, text: RICH }]));
    expect(existsSync(cacheDir)).toBe(false);
    const first = loadConfig([file], { cacheDir });
    expect(readdirSync(cacheDir)).toHaveLength(1);
    expect(loadConfig([file], { cacheDir })).toEqual(first);
  });
});

describe("misses", () => {
  const base = { "a.yaml": RICH, "b.yaml": "kind: role\nmetadata: { name: extra }\n" };

  test("any byte of any file changed is another key", () => {
    const key = cacheKey(sourcesOf(base));
    const keys = new Set([key]);
    for (const [name, text] of Object.entries(base)) {
      for (let i = 0; i < text.length; i++) {
        const changed = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
        keys.add(cacheKey(sourcesOf({ ...base, [name]: changed })));
      }
    }
    expect(keys.size).toBe(1 + base["a.yaml"].length + base["b.yaml"].length);
    // The same bytes split differently between the files.
    expect(cacheKey(sourcesOf({ "a.yaml": "ab", "b.yaml": "c" }))).not.toBe(
      cacheKey(sourcesOf({ "a.yaml": "a", "b.yaml": "bc" })),
    );
  });

  test("a changed byte, a file added, removed, reordered or renamed each parse again", () => {
    const dir = join(scratch(), "cache");
    const { load, parses } = counting(dir);
    load(sourcesOf(base));
    load(sourcesOf(base));
    expect(parses()).toBe(1);
    const variants: ConfigSource[][] = [
      sourcesOf({ ...base, "a.yaml": RICH.replace("90d", "91d") }),
      sourcesOf({ ...base, "c.yaml": "" }),
      sourcesOf({ "a.yaml": RICH }),
      sourcesOf({ "b.yaml": base["b.yaml"], "a.yaml": RICH }),
      sourcesOf({ "a2.yaml": RICH, "b.yaml": base["b.yaml"] }),
    ];
    for (const [i, sources] of variants.entries()) {
      expect(load(sources)).toEqual(parseConfig(sources));
      expect(parses()).toBe(2 + i);
    }
    expect(load(sourcesOf({ ...base, "a.yaml": RICH.replace("90d", "91d") })).storage.retentionMs).toBe(
      91 * 86_400_000,
    );
    expect(parses()).toBe(1 + variants.length);
  });

  test("another host name is a miss, and its config names that host", () => {
    const dir = scratch();
    const cacheDir = join(dir, "cache");
    // No nodename or cluster name in the file: both default to the host name.
    const file = join(dir, "esr.yaml");
    writeFileSync(file, "ssh_service: { enhanced_recording: { root_path: /h } }\n");
    const here = loadConfig([file], { cacheDir });
    const other = spawnLoader(cacheDir, [file], "esr-cache-other-host");
    expect(other.nodename).toBe("esr-cache-other-host");
    expect(other.clusterName).toBe("esr-cache-other-host");
    expect(other.parsed).toBe(true);
    expect(readdirSync(cacheDir)).toHaveLength(2);
    // Back on this host: this host's entry, not the other's.
    expect(loadConfig([file], { cacheDir })).toEqual(here);
  });
});

describe("trust", () => {
  /** A cached entry for RICH whose nodename is "forged", written as root would write it. */
  function forged() {
    const dir = join(scratch(), "cache");
    const sources = sourcesOf({ "rich.yaml": RICH });
    const { load, parses } = counting(dir);
    load(sources);
    const path = entryPath(dir, cacheKey(sources));
    forgeEntry(path, (c) => (c.nodename = "forged"));
    return { dir, path, sources, load, parses };
  }

  test("a root-owned, root-only entry is believed (what makes the next tests able to fail)", () => {
    const { load, sources, parses } = forged();
    expect(load(sources).nodename).toBe("forged");
    expect(parses()).toBe(1);
  });

  test("an entry owned by another user is ignored and replaced", () => {
    const { load, sources, path, parses } = forged();
    chownSync(path, 65534, 65534);
    expect(load(sources).nodename).toBe("rich-node");
    expect(parses()).toBe(2);
    expect(statSync(path).uid).toBe(0);
    expect(load(sources).nodename).toBe("rich-node");
    expect(parses()).toBe(2);
  });

  for (const mode of [0o620, 0o602, 0o666]) {
    test(`an entry with mode ${mode.toString(8)} is ignored`, () => {
      const { load, sources, path, parses } = forged();
      chmodSync(path, mode);
      expect(load(sources).nodename).toBe("rich-node");
      expect(parses()).toBe(2);
    });
  }

  test("a directory another user owns, or others may write, is neither read nor written", () => {
    for (const spoil of [(dir: string) => chownSync(dir, 65534, 65534), (dir: string) => chmodSync(dir, 0o1777)]) {
      const { load, sources, dir, path, parses } = forged();
      spoil(dir);
      expect(load(sources).nodename).toBe("rich-node");
      expect(load(sources).nodename).toBe("rich-node");
      expect(parses()).toBe(3);
      // The forged entry is still there: nothing was written into that directory.
      expect(readFileSync(path, "utf8")).toContain('"forged"');
    }
  });

  test("a symlinked entry is not followed", () => {
    const { load, sources, path, parses } = forged();
    const elsewhere = join(scratch(), "entry.json");
    writeFileSync(elsewhere, readFileSync(path));
    chmodSync(elsewhere, 0o600);
    rmSync(path);
    Bun.spawnSync(["ln", "-s", elsewhere, path]);
    expect(load(sources).nodename).toBe("rich-node");
    expect(parses()).toBe(2);
  });

  test("not root: parsed every time, nothing written", () => {
    const dir = scratch();
    chmodSync(dir, 0o755);
    const file = join(dir, "esr.yaml");
    writeFileSync(file, RICH);
    chmodSync(file, 0o644);
    const cacheDir = join(dir, "cache");
    const out = spawnLoader(cacheDir, [file], undefined, [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
    ]);
    expect(out.nodename).toBe("rich-node");
    expect(out.parsed).toBe(true);
    expect(existsSync(cacheDir)).toBe(false);
  });
});

describe("damage", () => {
  function cached() {
    const dir = join(scratch(), "cache");
    const sources = sourcesOf({ "rich.yaml": RICH });
    const counter = counting(dir);
    const fresh = counter.load(sources);
    return { ...counter, dir, sources, fresh, path: entryPath(dir, cacheKey(sources)) };
  }

  const damages: [string, (text: string) => string][] = [
    ["garbage", () => "\u0000\u00ff not json"],
    ["empty", () => ""],
    ["truncated", (text) => text.slice(0, text.length >> 1)],
    ["one line", (text) => text.split("\n")[0]!],
    ["a byte of the body changed", (text) => text.replace('"rich-node"', '"rich-nodf"')],
    ["another format", (text) => text.replace('"format":1', '"format":0')],
    ["another key", (text) => text.replace(/"key":"[0-9a-f]/, '"key":"x')],
    ["valid JSON, not an entry", () => "null\nnull"],
  ];
  for (const [what, damage] of damages) {
    test(`an entry ${what} is ignored and rewritten`, () => {
      const { load, sources, fresh, path, parses } = cached();
      const good = readFileSync(path, "utf8");
      writeFileSync(path, damage(good));
      expect(load(sources)).toEqual(fresh);
      expect(parses()).toBe(2);
      expect(readFileSync(path, "utf8")).toBe(good);
      expect(load(sources)).toEqual(fresh);
      expect(parses()).toBe(2);
    });
  }

  test("a config with an error is never cached: each run reports it", () => {
    const dir = join(scratch(), "cache");
    const { load, parses } = counting(dir);
    const bad = sourcesOf({ "bad.yaml": "ssh_service:\n  enhanced_recording:\n    enabled: maybe\n" });
    for (let i = 1; i <= 2; i++) {
      expect(errorOf(() => load(bad))).toBe(
        'bad.yaml:3: ssh_service.enhanced_recording.enabled: must be true or false, got string "maybe"',
      );
      expect(parses()).toBe(i);
    }
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    // A user naming a role no file defines fails only once every file is read: still not cached.
    const late = sourcesOf({ "u.yaml": "kind: user\nmetadata: { name: u }\nspec: { roles: [nope] }\n" });
    expect(() => load(late)).toThrow(ConfigError);
    expect(() => load(late)).toThrow(ConfigError);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  test(`at most ${MAX_ENTRIES} entries: the oldest go first, leftovers of killed writers too`, () => {
    const dir = join(scratch(), "cache");
    const { load } = counting(dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const leftover = join(dir, ".deadbeef.1.tmp");
    writeFileSync(leftover, "half an entry");
    const keys: string[] = [];
    for (let i = 0; i < MAX_ENTRIES + 8; i++) {
      const sources = sourcesOf({ "gen.yaml": `teleport: { nodename: n${i} }\n` });
      load(sources);
      keys.push(cacheKey(sources));
      Bun.sleepSync(2); // distinct mtimes: "oldest" is then well defined
    }
    const names = readdirSync(dir);
    expect(names).toHaveLength(MAX_ENTRIES);
    expect(names.sort()).toEqual(
      keys
        .slice(-MAX_ENTRIES)
        .map((k) => `${k}.json`)
        .sort(),
    );
    expect(existsSync(leftover)).toBe(false);
  });
});

describe("the YAML parser is not evaluated on a hit", () => {
  test("a spawned process: loaded on a miss, absent on a hit", () => {
    const dir = scratch();
    const file = join(dir, "esr.yaml");
    writeFileSync(file, RICH);
    const cacheDir = join(dir, "cache");
    const miss = spawnLoader(cacheDir, [file]);
    expect(miss.parsed).toBe(true);
    expect(miss.yamlModules).toBeGreaterThan(10);
    const hit = spawnLoader(cacheDir, [file]);
    expect(hit.parsed).toBe(false);
    expect(hit.yamlModules).toBe(0);
    expect(hit.nodename).toBe("rich-node");
  });

  test("the compiled esr keeps its configs in /run/esr/config and believes them", async () => {
    // The recordings go to teleport.data_dir; a forged entry moving them elsewhere shows that the
    // second run took its config from the cache (root-owned, 0600: trusted) and parsed nothing.
    const dir = scratch();
    const [parsedDir, cachedDir] = [join(dir, "parsed"), join(dir, "cached")];
    const file = join(dir, "esr.yaml");
    writeFileSync(file, `teleport: { data_dir: ${parsedDir} }\n`);
    const run = () =>
      Bun.spawnSync({
        cmd: [ESR, "record", "-q", "--no-daemon", "--events", "command", "--config", file, "--", "true"],
        stdout: "pipe",
        stderr: "pipe",
      });
    expect(run().exitCode).toBe(0);
    const entry = readdirSync(CONFIG_CACHE_DIR)
      .filter((name) => name.endsWith(".json"))
      .map((name) => join(CONFIG_CACHE_DIR, name))
      .find((path) => readFileSync(path, "utf8").includes(JSON.stringify(file)));
    expect(entry).toBeDefined();
    expect(statSync(CONFIG_CACHE_DIR).mode & 0o777).toBe(0o700);
    forgeEntry(entry!, (c) => (c.dataDir = cachedDir));
    const second = run();
    expect(second.stderr.toString()).toBe("");
    expect(readdirSync(sessionsDir(parsedDir))).not.toHaveLength(0);
    expect(readdirSync(sessionsDir(cachedDir))).not.toHaveLength(0);
    rmSync(entry!, { force: true });
  }, 60_000);
});

interface Loaded {
  nodename: string;
  clusterName: string;
  parsed: boolean;
  yamlModules: number;
}

/**
 * loadConfig in a fresh bun process (optionally in a new UTS namespace with another host name, or
 * under a wrapper such as setpriv): what it returned, and whether config-yaml.ts and the `yaml`
 * package were evaluated (require.cache lists every module Bun has loaded, ESM included).
 */
function spawnLoader(cacheDir: string, files: string[], host?: string, wrapper: string[] = []): Loaded {
  const script = `
    const { loadConfig } = await import(${JSON.stringify(join(ROOT, "lib", "config", "config.ts"))});
    const config = loadConfig(${JSON.stringify(files)}, { cacheDir: ${JSON.stringify(cacheDir)} });
    const loaded = Object.keys(require.cache);
    console.log(JSON.stringify({
      nodename: config.nodename,
      clusterName: config.clusterName,
      parsed: loaded.some((path) => path.endsWith("/lib/config/config-yaml.ts")),
      yamlModules: loaded.filter((path) => path.includes("/node_modules/yaml/")).length,
    }));`;
  const bun = [process.execPath, "-e", script];
  const cmd = host
    ? ["unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`, host, ...bun]
    : [...wrapper, ...bun];
  const out = Bun.spawnSync({ cmd, cwd: "/", stdout: "pipe", stderr: "pipe" });
  if (out.exitCode !== 0) throw new Error(`loader failed (${out.exitCode}): ${out.stderr.toString()}`);
  return JSON.parse(out.stdout.toString()) as Loaded;
}
