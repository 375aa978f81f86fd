/**
 * Evasion: what an engineer would try in order to run something unrecorded, or to get something
 * misleading recorded, and what esr records for each (README, "Security: what esr records, and its
 * limits", lists the same techniques with their results). Every technique runs for real, in a real
 * session, through dist/esr.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SessionCommandEvent } from "../../lib/events/kinds/index.ts";
import { evade, requireRootAndEsr } from "../support/adversary.ts";
import { execLines, ofType, record, replayEvents, tempDir } from "../support/harness.ts";
import { i386Abi, SHELL_STATUS_SIGSEGV } from "../support/i386-abi.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

const COMMAND_ONLY = ["--events", "command"];
let EVADE: string;

beforeAll(() => {
  requireRootAndEsr();
  EVADE = evade();
});

async function commands(command: string[], flags = COMMAND_ONLY): Promise<SessionCommandEvent[]> {
  const r = await record(command, { flags });
  return ofType(await replayEvents(r.dataDir, r.sid), "session.command");
}

/** The last command event whose argv contains `marker`: the end of a chain (evade → its target). */
function withArg(events: SessionCommandEvent[], marker: string): SessionCommandEvent {
  const found = events.filter((e) => e.argv.includes(marker));
  if (found.length === 0)
    throw new Error(`no exec with argument ${marker}: ${JSON.stringify(events.map((e) => [e.path, e.argv]))}`);
  return found[found.length - 1]!;
}

const ECHO = statSync("/bin/echo").isSymbolicLink() ? "/bin/echo" : "/usr/bin/echo";
const REAL_ECHO = ((): string => {
  const r = Bun.spawnSync(["readlink", "-f", "/bin/echo"]);
  return r.stdout.toString().trim();
})();

describe("fileless and fd-based exec", () => {
  test("1. memfd_create + execveat(AT_EMPTY_PATH): exe names the memfd, flagged deleted", async () => {
    const e = withArg(await commands([EVADE, "memfd", "innocent", ECHO, "memfd-marker"]), "memfd-marker");
    expect(e.path).toMatch(/^\/dev\/fd\/\d+$/);
    expect(e.exe).toBe("/memfd:innocent");
    expect(e.exe_deleted).toBe(true);
    expect(e.return_code).toBe(0);
  });

  test("2. fexecve of an opened file: exe is the real file", async () => {
    const e = withArg(await commands([EVADE, "fdexec", ECHO, "fd-marker"]), "fd-marker");
    expect(e.path).toMatch(/^\/dev\/fd\/\d+$/);
    expect(e.exe).toBe(REAL_ECHO);
    expect(e.exe_deleted).toBeUndefined();
  });

  test("3. execveat with a directory fd and a relative name", async () => {
    const e = withArg(await commands([EVADE, "dirfd", "/usr/bin", "echo", "dirfd-marker"]), "dirfd-marker");
    expect(e.path).toMatch(/^\/dev\/fd\/\d+\/echo$/);
    expect(e.exe).toBe(REAL_ECHO);
  });

  test("4. execve of /proc/self/fd/N", async () => {
    const e = withArg(await commands([EVADE, "procfd", ECHO, "procfd-marker"]), "procfd-marker");
    expect(e.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect(e.exe).toBe(REAL_ECHO);
  });

  test("5. a file unlinked before its fd is executed: its old path, flagged deleted", async () => {
    const e = withArg(await commands([EVADE, "deleted", ECHO, "deleted-marker"]), "deleted-marker");
    expect(e.exe).toMatch(/^\/tmp\/evade-deleted-\w+$/);
    expect(e.exe_deleted).toBe(true);
  });
});

describe("misleading names", () => {
  test("6. argv[0] spoofing: path and exe are the kernel's, argv[0] is not taken for them", async () => {
    const e = withArg(await commands([EVADE, "argv0", "[kworker/0:1]", ECHO, "argv0-marker"]), "argv0-marker");
    expect(e.path).toBe(ECHO);
    expect(e.exe).toBe(REAL_ECHO);
    expect(e.argv).toEqual(["argv0-marker"]);
    expect(e.program).toBe("echo");
  });

  test("7. a symlink with an innocent name: path is the link, exe the file it leads to", async () => {
    const dir = tempDir();
    const link = join(dir, "ls");
    Bun.spawnSync(["ln", "-s", "/usr/bin/sleep", link]);
    const e = withArg(await commands([link, "0"]), "0");
    expect(e.path).toBe(link);
    expect(e.exe).toBe(Bun.spawnSync(["readlink", "-f", "/usr/bin/sleep"]).stdout.toString().trim());
  });

  test("8. comm spoofing with prctl(PR_SET_NAME): program says so, path does not", async () => {
    const events = await commands([EVADE, "comm", "sshd", "/no/such/comm-marker"]);
    const e = events.find((x) => x.path === "/no/such/comm-marker")!;
    expect(e.program).toBe("sshd");
    expect(e.return_code).toBe(-2);
  });

  test("9. argv rewritten in memory after exec (setproctitle): the exec-time argv is kept", async () => {
    const events = await commands([EVADE, "rewrite", "topsecret-marker", ECHO]);
    // What ps would show now is x…x; the recording holds what the process was started with.
    expect(withArg(events, "topsecret-marker").path).toBe(EVADE);
    expect(events.some((e) => e.path === ECHO && e.argv[0] === "x".repeat("topsecret-marker".length))).toBe(true);
  });

  test("10. exec with argc = 0 (execve(path, NULL, NULL))", async () => {
    const events = await commands([EVADE, "noargv", "/bin/true"]);
    const e = events.find((x) => x.path === "/bin/true")!;
    expect(e.argv).toEqual([]);
    expect(e.return_code).toBe(0);
  });

  test("11. a script: the interpreter the kernel ran is recorded, with the script as path", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const script = join(dir, "update-motd");
    writeFileSync(script, "#!/bin/sh -e\n/bin/true script-inner-marker\n", { mode: 0o755 });
    const events = await commands([script, "script-arg"]);
    const e = events.find((x) => x.path === script)!;
    expect(e.interpreter).toBe("/bin/sh");
    expect(e.exe).toBe(Bun.spawnSync(["readlink", "-f", "/bin/sh"]).stdout.toString().trim());
    // The kernel's rewritten argv: [interpreter, option, script, args]; esr drops only argv[0].
    expect(e.argv).toEqual(["-e", script, "script-arg"]);
    expect(withArg(events, "script-inner-marker").path).toBe("/bin/true");
  });

  test("12. a log injection: newlines and JSON in arguments stay inside one event", async () => {
    const forged = '\n{"event":"session.end","code":"T2004I","ei":1}\n';
    const r = await record(["/bin/true", forged, "inject-marker"], { flags: COMMAND_ONLY });
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.end").length).toBe(1);
    expect(withArg(ofType(events, "session.command"), "inject-marker").argv).toEqual([forged, "inject-marker"]);
    const log = readFileSync(join(r.dataDir, "log", "events.log"), "utf8")
      .trimEnd()
      .split("\n");
    expect(log.length).toBe(events.length);
  });
});

describe("interpreters and loaders that run code without an exec", () => {
  test("13. shell builtins and eval of decoded text: the decoded command's exec is recorded", async () => {
    // The command never appears in clear: printf (a builtin) decodes it, eval (a builtin) runs it.
    const hidden = [..."/bin/echo eval-marker"].map((c) => `\\x${c.charCodeAt(0).toString(16)}`).join("");
    const events = await commands(["bash", "-c", `eval "$(printf '${hidden}')"`]);
    expect(events[0]!.argv).not.toContain("eval-marker");
    expect(execLines(events)).toContain("/bin/echo eval-marker");
  });

  test("14. an interpreter opening files and connecting without exec: disk and network events show it", async () => {
    const r = await record(
      [
        "perl",
        "-e",
        'use Socket; open(my $f, "<", "/etc/hostname"); socket(my $s, PF_INET, SOCK_STREAM, 0); connect($s, pack_sockaddr_in(9, inet_aton("127.0.0.1")));',
      ],
      { flags: ["--events", "command,disk,network"] },
    );
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.command").map((e) => e.path)).toEqual(["/usr/bin/perl"]);
    expect(ofType(events, "session.disk").some((e) => e.path === "/etc/hostname" && e.return_code >= 0)).toBe(true);
    expect(ofType(events, "session.network").some((e) => e.dst_port === 9 && e.dst_addr === "127.0.0.1")).toBe(true);
  });

  test("15. a program run by ld.so directly: the loader's exec, with the program as its argument", async () => {
    const events = await commands(["/lib64/ld-linux-x86-64.so.2", "/bin/echo", "ldso-marker"]);
    const e = withArg(events, "ldso-marker");
    expect(e.path).toBe("/lib64/ld-linux-x86-64.so.2");
    expect(e.argv).toEqual(["/bin/echo", "ldso-marker"]);
    expect(events.length).toBe(1); // echo itself is mapped by ld.so, never exec'd
  });

  test("16. LD_PRELOAD: the library is not an exec, its open is a disk event", async () => {
    const lib = "/usr/lib/x86_64-linux-gnu/libz.so.1";
    const r = await record(["env", `LD_PRELOAD=${lib}`, "/bin/true", "preload-marker"], {
      flags: ["--events", "command,disk"],
    });
    const events = await replayEvents(r.dataDir, r.sid);
    const trueExec = withArg(ofType(events, "session.command"), "preload-marker");
    expect(trueExec.path).toBe("/bin/true");
    // The file loaded (libz.so.1 is a symlink to it), and the name the loader asked for.
    const loaded = ofType(events, "session.disk").find((e) => e.pid === trueExec.pid && e.requested_path === lib);
    expect(loaded?.path).toBe(realpathSync(lib));
  });
});

describe("processes that outlive the shell", () => {
  const lingering = async (script: string, marker: string) => {
    const r = await record(["bash", "-c", script], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(0);
    const events = await replayEvents(r.dataDir, r.sid);
    expect(execLines(events)).toContain(`/bin/echo ${marker}`);
    // session.end comes after the straggler's exec: the recorder waited for the slice to empty.
    expect(events[events.length - 1]!.event).toBe("session.end");
    expect(r.stderr).toContain("recording what it left running");
    return events;
  };

  test("17. background job with disown", async () => {
    await lingering("(sleep 0.4; /bin/echo bg-marker) >/dev/null & disown; exit 0", "bg-marker");
  });

  test("18. nohup", async () => {
    await lingering("nohup sh -c 'sleep 0.4; /bin/echo nohup-marker' >/dev/null 2>&1 & exit 0", "nohup-marker");
  });

  test("19. setsid (a new session, no controlling terminal)", async () => {
    await lingering(
      "setsid sh -c 'sleep 0.4; /bin/echo setsid-marker' >/dev/null 2>&1 < /dev/null & exit 0",
      "setsid-marker",
    );
  });

  test("20. a double-fork daemon reparented to init", async () => {
    const events = await lingering(
      "( setsid sh -c '(sleep 0.5; /bin/echo daemon-marker) & exit 0' & ) >/dev/null 2>&1 </dev/null; exit 0",
      "daemon-marker",
    );
    const daemon = ofType(events, "session.command").find((e) => e.argv[0] === "daemon-marker")!;
    // Its parent is gone: it was adopted (by init or a subreaper), and still recorded.
    expect(daemon.ppid).not.toBe(0);
  });
});

describe("cgroups and namespaces", () => {
  test("21. moving itself into a child cgroup of the slice (root): still recorded, with the child's cgroup id", async () => {
    const events = await commands([
      "bash",
      "-c",
      'd=$(sed -n "s/^0:://p" /proc/self/cgroup); mkdir /cgroup2$d/hideout && echo $$ > /cgroup2$d/hideout/cgroup.procs && /bin/echo child-cgroup-marker',
    ]);
    const e = withArg(events, "child-cgroup-marker");
    const first = events[0]!;
    expect(e.cgroup_id).not.toBe(first.cgroup_id);
  });

  test("22. a non-root user cannot move out of the slice, nor into a child of it", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const events = await commands(
      [
        "bash",
        "-c",
        `echo $$ > /cgroup2/cgroup.procs 2>${dir}/out; echo $? >> ${dir}/out; d=$(sed -n "s/^0:://p" /proc/self/cgroup); mkdir /cgroup2$d/x 2>>${dir}/out; echo $? >> ${dir}/out; /bin/echo nonroot-marker`,
      ],
      [...COMMAND_ONLY, "--login", "nobody"],
    );
    const out = readFileSync(join(dir, "out"), "utf8");
    expect(out).toMatch(/Permission denied/);
    expect(out.split("\n").filter((l) => l === "1").length).toBe(2);
    expect(withArg(events, "nonroot-marker").path).toBe("/bin/echo");
  });

  test("23. LIMIT: root inside the session can move itself out of the slice; the move itself is recorded", async () => {
    const events = await commands(["bash", "-c", "echo $$ > /cgroup2/cgroup.procs; /bin/echo escaped-marker"]);
    // The command line that escapes is recorded; what runs after the move is not (README: limits).
    expect(events[0]!.argv.join(" ")).toContain("/cgroup2/cgroup.procs");
    expect(events.some((e) => e.argv.includes("escaped-marker"))).toBe(false);
  });

  test("24. new pid, mount and cgroup namespaces: still recorded, with host pids", async () => {
    const events = await commands([
      "unshare",
      "--pid",
      "--fork",
      "--mount-proc",
      "--cgroup",
      "sh",
      "-c",
      "/bin/echo ns-marker $$",
    ]);
    const e = withArg(events, "ns-marker");
    expect(e.argv).toEqual(["ns-marker", "1"]); // pid 1 inside its namespace…
    expect(e.pid).toBeGreaterThan(1); // …its real pid in the event
  });

  test("25. LIMIT: work handed to a process outside the session is not recorded (only the hand-off is)", async () => {
    const dir = tempDir();
    const fifo = join(dir, "jobs");
    Bun.spawnSync(["mkfifo", fifo]);
    // An outside "helper" of the same host runs whatever it reads.
    const helper = Bun.spawn(["sh", "-c", `read cmd < ${fifo}; $cmd`], { stdout: "ignore" });
    const r = await record(["sh", "-c", `echo "/bin/echo handed-off-marker" > ${fifo}`], {
      flags: ["--events", "command,disk"],
    });
    await helper.exited;
    const events = await replayEvents(r.dataDir, r.sid);
    expect(execLines(events).some((l) => l.includes("handed-off-marker"))).toBe(true); // the sh -c line that hands it off
    expect(ofType(events, "session.command").some((e) => e.path === "/bin/echo")).toBe(false);
    expect(ofType(events, "session.disk").some((e) => e.path === fifo)).toBe(true);
  });
});

describe("huge and odd argument lists", () => {
  test("26. thousands of arguments: the first 32 KiB exactly, then a visible marker with the real size", async () => {
    const args = Array.from({ length: 20_000 }, (_, i) => `a${i}`);
    const e = (await commands(["/bin/true", ...args]))[0]!;
    const argv = e.argv;
    expect(e.argv_truncated).toBe(true);
    const total = Buffer.byteLength(["/bin/true", ...args].join("\0") + "\0");
    expect(argv[argv.length - 1]).toBe(`[esr: argv truncated] ${total} bytes in all`);
    const kept = argv.slice(0, -1);
    // Whole arguments, in order, up to 32 KiB; at most the last one is cut.
    expect(kept.slice(0, -1)).toEqual(args.slice(0, kept.length - 1));
    expect(Buffer.byteLength(["/bin/true", ...kept].join("\0"))).toBeLessThanOrEqual(32 * 1024);
  });

  test("27. megabytes of arguments (15 × 120 KiB): recorded, cut visibly, the real size given", async () => {
    const big = Array.from({ length: 15 }, (_, i) => String.fromCharCode(97 + i).repeat(120 * 1024));
    const e = (await commands(["/bin/true", ...big]))[0]!;
    const argv = e.argv;
    expect(e.argv_truncated).toBe(true);
    expect(argv[0]).toBe("a".repeat(32 * 1024 - "/bin/true".length - 1));
    expect(argv[argv.length - 1]).toBe(`[esr: argv truncated] ${10 + 15 * (120 * 1024 + 1)} bytes in all`);
  });

  test("28. empty strings, newlines, tabs, control characters, quotes and invalid UTF-8", async () => {
    const dir = tempDir();
    const script = join(dir, "odd.sh");
    // bash's $'…' passes raw bytes: \xff\xfe is not UTF-8 and becomes U+FFFD (README).
    writeFileSync(
      script,
      `/bin/true '' $'line1\\nline2' $'tab\\there' $'\\x01\\x1b[31m' 'say "hi"' "it's" $'bad\\xff\\xfeutf8' 'ünïcødé' odd-marker\n`,
    );
    const e = withArg(await commands(["bash", script]), "odd-marker");
    expect(e.argv).toEqual([
      "",
      "line1\nline2",
      "tab\there",
      "\x01\x1b[31m",
      'say "hi"',
      "it's",
      "bad\uFFFD\uFFFDutf8",
      "ünïcødé",
      "odd-marker",
    ]);
  });

  test("29. a failed exec with more than 256 arguments: cut visibly", async () => {
    const events = await commands(["bash", "-c", `exec /no/such/many-args $(seq 1 400)`]);
    const e = events.find((x) => x.path === "/no/such/many-args")!;
    expect(e.return_code).toBe(-2);
    expect(e.argv_truncated).toBe(true);
    const argv = e.argv;
    expect(argv.slice(0, 255)).toEqual(Array.from({ length: 255 }, (_, i) => String(i + 1)));
    expect(argv[argv.length - 1]).toMatch(/^\[esr: argv truncated\]/);
  });

  test("30b. a program 60 directories deep: exe keeps the innermost components and says it is cut", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const deep = join(dir, ...Array.from({ length: 60 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    Bun.spawnSync(["cp", "/bin/true", join(deep, "deep-true")]);
    const e = (await commands([join(deep, "deep-true"), "deep-marker"]))[0]!;
    expect(e.path).toBe(join(deep, "deep-true"));
    expect(e.exe_truncated).toBe(true);
    expect(e.exe).toMatch(/^d\d+\/.*\/d59\/deep-true \[esr: path truncated\]$/);
  });

  test("30. a path longer than PATH_MAX: the failed exec is recorded, its path cut visibly", async () => {
    const long = `/${"d".repeat(200)}`.repeat(25); // 5025 bytes
    const events = await commands(["bash", "-c", `exec ${long} long-path-marker`]);
    const e = withArg(events, "long-path-marker");
    expect(e.return_code).toBe(-36); // ENAMETOOLONG
    expect(e.path_truncated).toBe(true);
    expect(e.path).toEndWith("[esr: path truncated]");
  });
});

describe("speed and concurrency", () => {
  test("31. 2000 very short-lived processes: every one recorded, nothing lost", async () => {
    const r = await record(["bash", "-c", "for i in $(seq 1 2000); do /bin/true short-$i; done"], {
      flags: COMMAND_ONLY,
    });
    const events = await replayEvents(r.dataDir, r.sid);
    const seen = new Set(ofType(events, "session.command").map((e) => e.argv[0]));
    for (let i = 1; i <= 2000; i++) expect(seen.has(`short-${i}`)).toBe(true);
    expect(ofType(events, "session.end")[0]!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });

  test("32. a process SIGKILLed right after its exec is still recorded", async () => {
    // Each child is killed as soon as /proc shows it is no longer bash, i.e. right after its exec.
    const events = await commands([
      "bash",
      "-c",
      'for i in $(seq 1 20); do /bin/sleep 10 ${i}e-9 & p=$!; while [ "$(readlink /proc/$p/exe)" = /usr/bin/bash ]; do :; done; kill -9 $p; done; wait',
    ]);
    const killed = events.filter((e) => e.path === "/bin/sleep").map((e) => e.argv[1]);
    expect(killed).toEqual(Array.from({ length: 20 }, (_, i) => `${i + 1}e-9`));
  });

  test("33. many threads of one process calling execve at once: the one that wins is recorded", async () => {
    const r = await record([EVADE, "threads", "8", "/bin/echo"], { flags: COMMAND_ONLY });
    const won = r.stdout.trim(); // the thread whose exec replaced the process printed its name
    expect(won).toMatch(/^thread-\d$/);
    const events = ofType(await replayEvents(r.dataDir, r.sid), "session.command");
    const ok = events.filter((e) => e.path === "/bin/echo" && e.return_code === 0);
    expect(ok.map((e) => e.argv[0])).toEqual([won]);
  });

  test("34. 8 processes execing in parallel, 200 each: all 1600 recorded", async () => {
    const r = await record(
      ["bash", "-c", "for p in 1 2 3 4 5 6 7 8; do (for i in $(seq 1 200); do /bin/true par-$p-$i; done) & done; wait"],
      { flags: COMMAND_ONLY },
    );
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.command").filter((e) => /^par-\d-\d+$/.test(e.argv[0] ?? "")).length).toBe(1600);
    expect(ofType(events, "session.end")[0]!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });
});

describe("other ABIs", () => {
  const abi = i386Abi();
  /** Runs `evade MODE …` in a session and prints its exit status: the attempt itself is always recorded. */
  async function i386Attempts(attempts: string[][]) {
    const script = attempts.map((args) => `${EVADE} ${args.join(" ")}; echo "status=$?"`).join("; ");
    const r = await record(["bash", "-c", script], { flags: COMMAND_ONLY });
    const events = ofType(await replayEvents(r.dataDir, r.sid), "session.command");
    return { events, statuses: [...r.stdout.matchAll(/status=(\d+)/g)].map((m) => Number(m[1])), stdout: r.stdout };
  }
  /** Where the ABI is missing: each attempt was recorded, and ended killed (SIGSEGV) or refused, having run nothing. */
  function expectImpossible(run: Awaited<ReturnType<typeof i386Attempts>>, markers: string[]) {
    if (abi.available) throw new Error("unreachable");
    for (const marker of markers) expect(withArg(run.events, marker).path).toBe(EVADE);
    if (abi.how === "killed") expect(run.statuses).toEqual(markers.map(() => SHELL_STATUS_SIGSEGV));
    else expect(run.stdout).toMatch(/i386 exec returned -\d+/);
  }

  if (abi.available) {
    test("35. a failed execve and execveat through the i386 ABI (int 0x80)", async () => {
      const events = await commands([
        "bash",
        "-c",
        `${EVADE} i386 /no/such/i386-marker a b; ${EVADE} i386at /no/such/i386at-marker c`,
      ]);
      const a = events.find((e) => e.path === "/no/such/i386-marker");
      const b = events.find((e) => e.path === "/no/such/i386at-marker");
      expect(a).toMatchObject({ argv: ["a", "b"], return_code: -2 });
      expect(b).toMatchObject({ argv: ["c"], return_code: -2 });
    });

    test("36. a successful exec through the i386 ABI is recorded like any other", async () => {
      const events = await commands([EVADE, "i386", "/bin/echo", "i386-ok-marker"]);
      expect(withArg(events, "i386-ok-marker").path).toBe("/bin/echo");
    });
  } else {
    test(`35. no i386 ABI on this host (${abi.detail}): an execve/execveat through int 0x80 is impossible, and the attempt is recorded`, async () => {
      const run = await i386Attempts([
        ["i386", "/no/such/i386-marker", "a", "b"],
        ["i386at", "/no/such/i386at-marker", "c"],
      ]);
      expectImpossible(run, ["/no/such/i386-marker", "/no/such/i386at-marker"]);
      // The kernel never saw an exec of the target: no failed exec naming it either.
      expect(
        run.events.filter((e) => e.path === "/no/such/i386-marker" || e.path === "/no/such/i386at-marker"),
      ).toEqual([]);
    });

    test(`36. no i386 ABI on this host (${abi.detail}): a successful exec through int 0x80 is impossible, the target never runs`, async () => {
      const run = await i386Attempts([["i386", "/bin/echo", "i386-ok-marker"]]);
      expectImpossible(run, ["i386-ok-marker"]);
      expect(run.events.filter((e) => e.path === "/bin/echo")).toEqual([]);
      expect(run.stdout.split("\n")).not.toContain("i386-ok-marker");
    });
  }
});
