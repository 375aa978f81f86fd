import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  defaultConfig,
  eventsForUser,
  loadConfig,
  parseConfig,
  parseEventKinds,
  type EsrConfig,
} from "../../lib/config/config.ts";
import { EsrError } from "../../lib/errors.ts";
import { DEFAULT_EVENTS } from "../../lib/events/kinds/index.ts";
import { FIXTURES } from "../support/harness.ts";

const CONFIG_FIXTURES = join(FIXTURES, "config");
/** Byte-for-byte copies of the reference examples (docs/contract.md §10):/teleport.yaml and examples/roles.yaml. */
const TELEPORT_YAML = join(CONFIG_FIXTURES, "teleport.yaml");
const ROLES_YAML = join(CONFIG_FIXTURES, "roles.yaml");
const OVERRIDE_YAML = join(CONFIG_FIXTURES, "override.yaml");

function parse(...texts: string[]): EsrConfig {
  return parseConfig(texts.map((text, i) => ({ name: `f${i + 1}.yaml`, text })));
}

/** The ConfigError that parsing `texts` throws (files are named f1.yaml, f2.yaml, ...). */
function configError(...texts: string[]): ConfigError {
  return thrown(() => parse(...texts), ConfigError);
}

function thrown<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (err) {
    if (err instanceof type) return err;
    throw err;
  }
  throw new Error(`expected a ${type.name}`);
}

/** A node config whose `ssh_service.enhanced_recording.<line>` is on line 3. */
function recording(line: string): string {
  return `ssh_service:\n  enhanced_recording:\n    ${line}\n`;
}

const ROLES_AB = `
kind: role
metadata: { name: a }
spec: { options: { enhanced_recording: [disk] } }
---
kind: role
metadata: { name: b }
spec: { options: { enhanced_recording: [command] } }
---
kind: user
metadata: { name: carol }
spec: { roles: [a, b] }
---
kind: user
metadata: { name: dave }
spec: { roles: [] }
`;

describe("the reference example files (docs/contract.md §10)", () => {
  test("teleport.yaml is accepted unchanged", () => {
    const cfg = loadConfig([TELEPORT_YAML]);
    expect(cfg.nodename).toBe("graviton-node");
    expect(cfg.dataDir).toBe("/var/lib/teleport");
    expect(cfg.clusterName).toBe("graviton-node");
    expect(cfg.enhancedRecording).toEqual({
      enabled: true,
      bufferPages: { command: 8, disk: 128, network: 8 },
      cgroupPath: "/cgroup2",
      rootPath: "/teleport",
      diskFilter: { ignorePathPrefixes: [] },
    });
    expect(cfg.files).toEqual([TELEPORT_YAML]);
  });

  test("roles.yaml: alice gets every kind, the role with `options: {}` the default set", () => {
    const cfg = loadConfig([ROLES_YAML]);
    expect(eventsForUser(cfg, "alice@example.com")).toEqual(["command", "disk", "network"]);
    expect(cfg.roles.get("access")).toEqual(DEFAULT_EVENTS);
    expect(cfg.users.get("alice@example.com")).toEqual(["access", "enhanced-recording"]);
  });

  test("--roles replaces the user's roles, --events replaces the set", () => {
    const cfg = loadConfig([ROLES_YAML]);
    expect(eventsForUser(cfg, "alice@example.com", { roles: ["access"] })).toEqual(["command", "network"]);
    expect(eventsForUser(cfg, "alice@example.com", { events: ["disk"] })).toEqual(["disk"]);
    expect(eventsForUser(cfg, "alice@example.com", { roles: ["access"], events: ["disk"] })).toEqual(["disk"]);
  });

  test("a missing file is reported, not skipped", () => {
    const missing = join(CONFIG_FIXTURES, "no-such.yaml");
    const err = thrown(() => loadConfig([TELEPORT_YAML, missing]), ConfigError);
    expect(err.message).toBe(`${missing}:0: file: cannot read: no such file or directory`);
  });
});

describe("defaults", () => {
  test("no files at all", () => {
    const cfg = parseConfig([]);
    expect(cfg).toEqual(defaultConfig());
    expect(cfg.nodename).toBe(hostname());
    expect(cfg.clusterName).toBe(hostname());
    expect(cfg.dataDir).toBe("/var/lib/esr");
    expect(cfg.enhancedRecording).toEqual({
      enabled: true,
      bufferPages: { command: 8, disk: 128, network: 8 },
      cgroupPath: "/cgroup2",
      rootPath: "/esr",
      diskFilter: { ignorePathPrefixes: [] },
    });
    expect(loadConfig([]).files).toEqual([]);
  });

  test("empty files, comments, empty keys and foreign resources change nothing", () => {
    const cfg = parse(
      "",
      "# only a comment\n",
      "teleport:\nssh_service:\n  enhanced_recording:\n    root_path:\n",
      "kind: token\nspec: 5\n",
    );
    expect(cfg).toEqual({ ...defaultConfig(), files: ["f1.yaml", "f2.yaml", "f3.yaml", "f4.yaml"] });
  });

  test("unknown keys anywhere are ignored", () => {
    const cfg = parse(`
version: v3
teleport: { nodename: n, log: { output: stderr } }
ssh_service:
  labels: { env: prod }
  enhanced_recording: { enabled: true, future_option: [1, 2] }
`);
    expect(cfg.nodename).toBe("n");
  });
});

describe("event sets", () => {
  test("a user's set is the union of the roles' sets, in EVENT_KINDS order", () => {
    expect(eventsForUser(parse(ROLES_AB), "carol")).toEqual(["command", "disk"]);
  });

  test("a user without a user resource, or without roles, gets the default", () => {
    const cfg = parse(ROLES_AB);
    expect(eventsForUser(cfg, "nobody")).toEqual(DEFAULT_EVENTS);
    expect(eventsForUser(cfg, "dave")).toEqual(DEFAULT_EVENTS);
    expect(eventsForUser(parseConfig([]), "root")).toEqual(DEFAULT_EVENTS);
  });

  test("--roles may give a user without a user resource its roles", () => {
    expect(eventsForUser(parse(ROLES_AB), "nobody", { roles: ["a"] })).toEqual(["disk"]);
  });

  test("--events is deduplicated and sorted", () => {
    expect(eventsForUser(parseConfig([]), "x", { events: ["network", "command", "network"] })).toEqual([
      "command",
      "network",
    ]);
  });

  test("an unknown role in --roles is an error naming it", () => {
    const err = thrown(() => eventsForUser(parse(ROLES_AB), "carol", { roles: ["a", "ghost"] }), EsrError);
    expect(err.message).toBe('unknown role "ghost" for user "carol" (defined roles: a, b)');
  });

  test("an empty enhanced_recording list means the default", () => {
    const cfg = parse("kind: role\nmetadata: { name: r }\nspec: { options: { enhanced_recording: [] } }\n");
    expect(cfg.roles.get("r")).toEqual(DEFAULT_EVENTS);
  });
});

describe("several files", () => {
  test("later files override scalars; roles and users accumulate", () => {
    const cfg = loadConfig([TELEPORT_YAML, ROLES_YAML, OVERRIDE_YAML]);
    expect(cfg.files).toEqual([TELEPORT_YAML, ROLES_YAML, OVERRIDE_YAML]);
    expect(cfg.nodename).toBe("graviton-node");
    expect(cfg.dataDir).toBe("/srv/esr");
    expect(cfg.clusterName).toBe("prod");
    expect(cfg.enhancedRecording).toEqual({
      enabled: false,
      bufferPages: { command: 8, disk: 256, network: 8 },
      cgroupPath: "/cgroup2",
      rootPath: "/teleport",
      diskFilter: { ignorePathPrefixes: [] },
    });
    expect([...cfg.roles.keys()]).toEqual(["enhanced-recording", "access", "disk-only"]);
    expect(eventsForUser(cfg, "bob")).toEqual(["command", "disk", "network"]);
    expect(eventsForUser(cfg, "alice@example.com")).toEqual(["command", "disk", "network"]);
  });

  test("cluster_name defaults to the final nodename", () => {
    expect(parse("teleport: { nodename: a }", "teleport: { nodename: b }").clusterName).toBe("b");
  });

  test("a user may name a role defined in a later file; a redefined role replaces the earlier one", () => {
    const user = "kind: user\nmetadata: { name: u }\nspec: { roles: [r] }\n";
    const role = (kinds: string) =>
      `kind: role\nmetadata: { name: r }\nspec: { options: { enhanced_recording: [${kinds}] } }\n`;
    expect(eventsForUser(parse(user, role("disk"), role("network")), "u")).toEqual(["network"]);
  });

  test("an error in the second file names that file", () => {
    expect(configError("teleport: { nodename: a }", recording("cgroup_path: cgroup2")).message).toStartWith(
      "f2.yaml:3: ssh_service.enhanced_recording.cgroup_path: ",
    );
  });
});

describe("values", () => {
  test("Teleport's unquoted YAML 1.1 booleans are accepted", () => {
    expect(parse(recording("enabled: off")).enhancedRecording.enabled).toBe(false);
    expect(parse(recording("enabled: yes")).enhancedRecording.enabled).toBe(true);
  });

  test("paths are normalised", () => {
    const cfg = parse(recording("root_path: /a/../esr/"), recording("cgroup_path: /sys//fs/cgroup/"));
    expect(cfg.enhancedRecording.rootPath).toBe("/esr");
    expect(cfg.enhancedRecording.cgroupPath).toBe("/sys/fs/cgroup");
  });

  test("anchors and aliases are followed", () => {
    const cfg = parse(`
ssh_service:
  enhanced_recording:
    command_buffer_size: &size 16
    network_buffer_size: *size
`);
    expect(cfg.enhancedRecording.bufferPages.network).toBe(16);
  });

  test("the largest and smallest buffer sizes are accepted", () => {
    expect(parse(recording("disk_buffer_size: 1048576")).enhancedRecording.bufferPages.disk).toBe(1048576);
    expect(parse(recording("command_buffer_size: 1")).enhancedRecording.bufferPages.command).toBe(1);
  });
});

describe("validation errors name file, line and key", () => {
  const ER = "ssh_service.enhanced_recording";
  const cases: [name: string, text: string, where: string, mentions: string][] = [
    ["misaligned keys", "teleport:\n  nodename: a\n data_dir: /x\n", "f1.yaml:3: yaml", "same column"],
    ["a tab for indentation", "teleport:\n\tnodename: a\n", "f1.yaml:2: yaml", "Tabs"],
    // The parser only notices at the next line that the list was never closed.
    ["an unclosed flow list", "a: 1\nb: [1, 2\nc: 3\n", "f1.yaml:3: yaml", "Flow sequence"],
    ["a duplicate key", "teleport:\n  nodename: a\n  nodename: b\n", "f1.yaml:3: yaml", "unique"],
    ["a quoted string for enabled", recording('enabled: "yes"'), `f1.yaml:3: ${ER}.enabled`, 'string "yes"'],
    ["a number for enabled", recording("enabled: 1"), `f1.yaml:3: ${ER}.enabled`, "number 1"],
    ["a number for cgroup_path", recording("cgroup_path: 5"), `f1.yaml:3: ${ER}.cgroup_path`, "number 5"],
    ["a number for nodename", "teleport:\n  nodename: 42\n", "f1.yaml:2: teleport.nodename", "number 42"],
    [
      "an empty cluster_name",
      'auth_service:\n  cluster_name: ""\n',
      "f1.yaml:2: auth_service.cluster_name",
      'string ""',
    ],
    ["a list for enhanced_recording", "ssh_service:\n  enhanced_recording: [a]\n", `f1.yaml:2: ${ER}`, "a list"],
    ["a scalar for teleport", "teleport: yes\n", "f1.yaml:1: teleport", 'string "yes"'],
    ["a negative size", recording("disk_buffer_size: -1"), `f1.yaml:3: ${ER}.disk_buffer_size`, "number -1"],
    ["a zero size", recording("command_buffer_size: 0"), `f1.yaml:3: ${ER}.command_buffer_size`, "number 0"],
    ["a fractional size", recording("network_buffer_size: 1.5"), `f1.yaml:3: ${ER}.network_buffer_size`, "number 1.5"],
    ["a non-numeric size", recording("disk_buffer_size: lots"), `f1.yaml:3: ${ER}.disk_buffer_size`, 'string "lots"'],
    ["a quoted size", recording('disk_buffer_size: "8"'), `f1.yaml:3: ${ER}.disk_buffer_size`, 'string "8"'],
    ["a huge size", recording("disk_buffer_size: 1048577"), `f1.yaml:3: ${ER}.disk_buffer_size`, "number 1048577"],
    ["a relative cgroup_path", recording("cgroup_path: cgroup2"), `f1.yaml:3: ${ER}.cgroup_path`, '"cgroup2"'],
    ["a relative root_path", recording("root_path: esr"), `f1.yaml:3: ${ER}.root_path`, '"esr"'],
    ["a relative data_dir", "teleport:\n  data_dir: var/lib/esr\n", "f1.yaml:2: teleport.data_dir", '"var/lib/esr"'],
    ["root_path /", recording("root_path: /"), `f1.yaml:3: ${ER}.root_path`, 'must not be "/"'],
    ["root_path that resolves to /", recording("root_path: /esr/.."), `f1.yaml:3: ${ER}.root_path`, '"/esr/.."'],
    ["a document that is not a mapping", "---\n- teleport\n", "f1.yaml:2: document", "a list"],
    ["a kind that is not a string", "kind: [role]\n", "f1.yaml:1: kind", "a list"],
    [
      "an unknown event kind",
      "kind: role\nmetadata: { name: r }\nspec:\n  options:\n    enhanced_recording:\n      - command\n      - disks\n",
      "f1.yaml:7: spec.options.enhanced_recording",
      'role "r": unknown event kind "disks"',
    ],
    [
      "a non-list enhanced_recording",
      "kind: role\nmetadata: { name: r }\nspec: { options: { enhanced_recording: command } }\n",
      "f1.yaml:3: spec.options.enhanced_recording",
      'string "command"',
    ],
    ["a role without metadata", "kind: role\nspec: {}\n", "f1.yaml:1: metadata.name", "role has no name"],
    [
      "a role without a name",
      "kind: role\nversion: v8\nmetadata:\n  labels: {}\n",
      "f1.yaml:3: metadata.name",
      "role has no name",
    ],
    ["a role with a numeric name", "kind: role\nmetadata: { name: 7 }\n", "f1.yaml:2: metadata.name", "number 7"],
    ["a user without a name", "kind: user\nmetadata: {}\n", "f1.yaml:2: metadata.name", "user has no name"],
    [
      "a user's roles not a list",
      "kind: user\nmetadata: { name: u }\nspec: { roles: admin }\n",
      "f1.yaml:3: spec.roles",
      'string "admin"',
    ],
    [
      "a user with an unknown role",
      "kind: user\nmetadata: { name: u }\nspec:\n  roles:\n    - access\n    - ghost\n---\nkind: role\nmetadata: { name: access }\n",
      "f1.yaml:6: spec.roles",
      'user "u" has role "ghost"',
    ],
    [
      "an error in a later document",
      "teleport: {}\n---\nkind: role\nmetadata: { name: r }\n---\nteleport:\n  data_dir: 3\n",
      "f1.yaml:7: teleport.data_dir",
      "number 3",
    ],
  ];

  for (const [name, text, where, mentions] of cases) {
    test(name, () => {
      const err = configError(text);
      expect(err.message).toStartWith(`${where}: `);
      expect(err.message).toContain(mentions);
      expect(err.message).not.toContain("\n");
    });
  }

  test("ConfigError carries its parts", () => {
    const err = new ConfigError("x.yaml", 4, "teleport.nodename", "must be a string");
    expect(err).toBeInstanceOf(EsrError);
    expect(err.message).toBe("x.yaml:4: teleport.nodename: must be a string");
    expect([err.file, err.line, err.key]).toEqual(["x.yaml", 4, "teleport.nodename"]);
  });
});

describe("parseEventKinds", () => {
  test("parses, trims, deduplicates and sorts", () => {
    expect(parseEventKinds("command,disk", "--events")).toEqual(["command", "disk"]);
    expect(parseEventKinds(" network , command,network", "--events")).toEqual(["command", "network"]);
  });

  test("an unknown kind is named", () => {
    const err = thrown(() => parseEventKinds("command,exec", "--events"), EsrError);
    expect(err.message).toBe('--events: unknown event kind "exec" (expected command, disk, network)');
  });

  test("empty kinds are rejected", () => {
    expect(thrown(() => parseEventKinds("", "--events"), EsrError).message).toStartWith(
      '--events: empty event kind in ""',
    );
    expect(thrown(() => parseEventKinds("command,", "--type"), EsrError).message).toStartWith(
      '--type: empty event kind in "command,"',
    );
  });
});

test("mangled config files fail with a ConfigError, never anything else", async () => {
  const original = (await Bun.file(TELEPORT_YAML).text()) + "---\n" + (await Bun.file(ROLES_YAML).text());
  const alphabet = [
    " ",
    "\n",
    ":",
    "-",
    "[",
    "]",
    "{",
    "}",
    "'",
    '"',
    "*",
    "&",
    "!",
    "#",
    "|",
    ">",
    "0",
    "a",
    "\t",
    "---\n",
  ];
  let seed = 1;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    let text = original;
    for (let edits = 1 + random(4); edits > 0; edits--) {
      const at = random(text.length);
      const insert = random(2) === 0 ? alphabet[random(alphabet.length)]! : "";
      text = text.slice(0, at) + insert + text.slice(at + random(3));
    }
    try {
      parseConfig([{ name: "fuzz.yaml", text }]);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw new Error(`${String(err)} for input:\n${text}`);
      expect(err.message).not.toContain("\n");
    }
  }
});
