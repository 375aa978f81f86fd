/**
 * Tamper-evident recordings (README "Tamper-evident recordings"): sessions recorded by the real
 * dist/esr on the real kernel, then edited as an intruder with root would edit them; `esr verify`
 * must find and locate each edit, and must not take a forged checkpoint for a genuine one.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, sign } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { ESR, record, runEsr, sessionsDir, tempDir } from "../support/harness.ts";
import { startRecording, waitFor } from "../support/adversary.ts";
import { recordOnPty, sessionFilePath } from "../support/pty-session.ts";
import {
  chainFilePath,
  copyDataDir,
  editGzipLines,
  editGzipText,
  gzipMembers,
  resignEnd,
  strangerKey,
  verify,
} from "../support/tamper.ts";
import { ChainHasher, checkpointMessage, runLength, type ChainRecord } from "../../lib/store/integrity/chain.ts";
import { HostKey, lastJournalEpoch } from "../../lib/store/integrity/host-key.ts";

/** Checkpoints every second, a new key epoch every second: a test sees several of each. */
const FAST = `esr:\n  integrity:\n    checkpoint_interval: 1s\n    epoch_length: 1s\n`;

function fastConfig(): string {
  const file = join(tempDir(), "esr.yaml");
  writeFileSync(file, FAST);
  return file;
}

/** Three execs over about 1.5 s: several flushes (gzip members) and interval checkpoints. */
const SCRIPT = ["sh", "-c", "/bin/true one; sleep 0.7; /bin/echo two > /dev/null; sleep 0.7; /bin/true three four"];

let clean: { dataDir: string; sid: string };

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests record with BPF and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
  const r = await record(SCRIPT, { flags: ["--config", fastConfig(), "--events", "command"] });
  expect(r.exitCode).toBe(0);
  clean = r;
});

function chainRecords(dataDir: string, sid: string): ChainRecord[] {
  return readFileSync(chainFilePath(dataDir, sid), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

function writeChain(dataDir: string, sid: string, records: ChainRecord[]) {
  writeFileSync(chainFilePath(dataDir, sid), records.map((r) => `${JSON.stringify(r)}\n`).join(""));
}

async function expectBroken(dataDir: string, sid: string, pattern: RegExp) {
  const v = await verify(dataDir, sid);
  expect(v.stdout).toContain(`${sid}  broken`);
  expect(v.stdout).toMatch(pattern);
  expect(v.exitCode).toBe(1);
  return v.stdout;
}

describe("esr verify on a session recorded by esr record", () => {
  test("a clean session verifies whole, sealed, with its checkpoints", async () => {
    const v = await verify(clean.dataDir, clean.sid);
    expect(v.stdout).toMatch(
      new RegExp(`^${clean.sid}  whole      \\d+ items, sealed \\S+ \\(session #0, epoch \\d+\\)\\n$`),
    );
    expect(v.exitCode).toBe(0);
    const kinds = chainRecords(clean.dataDir, clean.sid).flatMap((r) => (r.type === "checkpoint" ? [r.kind] : []));
    expect(kinds[0]).toBe("start");
    expect(kinds).toContain("interval");
    expect(kinds.at(-1)).toBe("end");
    // The readers say so without being asked.
    const ls = await runEsr(["ls", "--data-dir", clean.dataDir]);
    expect(ls.stdout).toMatch(new RegExp(`${clean.sid}\\s.*\\swhole\\s`));
    const replay = await runEsr(["replay", clean.sid, "--data-dir", clean.dataDir]);
    expect(replay.stderr).toBe("");
  });

  test("one byte changed inside a gzip member's event: the member's CRC fails, verify names the file and the item", async () => {
    const dir = copyDataDir(clean.dataDir);
    const path = sessionFilePath(dir, clean.sid, "session.command");
    const bytes = readFileSync(path);
    const members = gzipMembers(bytes);
    expect(members.length).toBeGreaterThan(2);
    // The middle of the second non-empty member: its compressed event data.
    const at = members[0]!.length + members[1]!.length + (members[2]!.length >> 1);
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(path, bytes);
    await expectBroken(
      dir,
      clean.sid,
      /item \d+ \(session\.command ei \d+\) not in .*command-events\.gz: .*damaged at byte/,
    );
  });

  test("an event line removed (the file re-gzipped, valid): that ei is missing", async () => {
    const dir = copyDataDir(clean.dataDir);
    let removed = -1;
    editGzipLines(sessionFilePath(dir, clean.sid, "session.command"), (lines) => {
      removed = JSON.parse(lines[1]!).ei;
      return lines.filter((_, i) => i !== 1);
    });
    await expectBroken(dir, clean.sid, new RegExp(`\\(session\\.command ei ${removed}\\) not in .* \\(removed\\?\\)`));
  });

  test("two event lines swapped: the order break is located", async () => {
    const dir = copyDataDir(clean.dataDir);
    editGzipLines(sessionFilePath(dir, clean.sid, "session.command"), ([a, b, ...rest]) => [b!, a!, ...rest]);
    await expectBroken(
      dir,
      clean.sid,
      /command-events\.gz line 1 holds ei \d+ where ei \d+ was recorded .*reordered or inserted/,
    );
  });

  test("an argv rewritten in place (valid gzip, same ei): the chain head of that flush differs", async () => {
    const dir = copyDataDir(clean.dataDir);
    editGzipText(sessionFilePath(dir, clean.sid, "session.command"), (t) => t.replace('"three"', '"thrEE"'));
    const detail = await expectBroken(dir, clean.sid, /items \d+–\d+ are not what was recorded \(changed in place\)/);
    // The files read clean, so replay, play and ls say it unasked.
    const replay = await runEsr(["replay", clean.sid, "--data-dir", dir]);
    expect(replay.stdout).toContain("thrEE");
    expect(replay.stderr).toBe(`esr: verify: broken: ${detail.slice(clean.sid.length + 13).trimEnd()}\n`);
    expect((await runEsr(["ls", "--data-dir", dir])).stdout).toMatch(new RegExp(`${clean.sid}\\s.*\\sbroken\\s`));
    // --no-verify skips the check (a listing of large recordings reads them all): the column says nothing.
    expect((await runEsr(["ls", "--no-verify", "--data-dir", dir])).stdout).toMatch(
      new RegExp(`${clean.sid}\\s.*\\s-\\s`),
    );
  });

  test("a gzip member dropped: its events are missing", async () => {
    const dir = copyDataDir(clean.dataDir);
    const path = sessionFilePath(dir, clean.sid, "session.command");
    const members = gzipMembers(readFileSync(path));
    writeFileSync(path, Buffer.concat(members.filter((_, i) => i !== 1)));
    await expectBroken(dir, clean.sid, /\(session\.command ei \d+\) not in/);
  });

  test("a file removed: its first item is missing, and why", async () => {
    const dir = copyDataDir(clean.dataDir);
    rmSync(sessionFilePath(dir, clean.sid, "session.command"));
    await expectBroken(dir, clean.sid, /not in .*command-events\.gz: .*cannot read/);
  });

  test("the order across files rewritten in a flush record (each file's own order kept): that flush's head differs", async () => {
    const dir = copyDataDir(clean.dataDir);
    const records = chainRecords(dir, clean.sid);
    const mixed = records.find((r) => r.type === "flush" && new Set(r.items.map((run) => run[0])).size > 1);
    if (mixed?.type !== "flush") throw new Error("no flush of the clean session names two streams");
    mixed.items.reverse();
    writeChain(dir, clean.sid, records);
    await expectBroken(dir, clean.sid, /items \d+–\d+ are not what was recorded \(changed in place\)/);
  });

  test("the end truncated, chain file included: the host journal still holds the seal", async () => {
    const dir = copyDataDir(clean.dataDir);
    const records = chainRecords(dir, clean.sid);
    const keep = records.findIndex((r) => r.type === "checkpoint" && r.kind === "interval");
    writeChain(dir, clean.sid, records.slice(0, keep + 1));
    await expectBroken(
      dir,
      clean.sid,
      /the host journal records its seal at item \d+; its files stop at item \d+ \(truncated\)/,
    );
  });

  test("a checkpoint re-signed with another key is rejected", async () => {
    const dir = copyDataDir(clean.dataDir);
    const path = chainFilePath(dir, clean.sid);
    writeFileSync(path, resignEnd(readFileSync(path, "utf8")));
    await expectBroken(dir, clean.sid, /the end checkpoint at item \d+ has a bad signature/);
  });

  test("--key with another host's key: wrong key; with this host's key (from esr check's file): whole", async () => {
    const wrong = await verify(clean.dataDir, clean.sid, ["--key", strangerKey()]);
    expect(wrong.stdout).toContain(`${clean.sid}  wrong-key`);
    expect(wrong.exitCode).toBe(1);
    // esr check prints the key; a copy kept elsewhere verifies.
    const config = join(tempDir(), "esr.yaml");
    writeFileSync(config, `teleport:\n  data_dir: ${clean.dataDir}\n`);
    const printed = /^ok {4}host key {8}(ed25519:\S+) /m.exec(
      (await runEsr(["check", "--config", config])).stdout,
    )?.[1];
    expect(`${printed}\n`).toBe(readFileSync(join(clean.dataDir, "integrity", "host.pub"), "utf8"));
    const keptElsewhere = join(tempDir(), "host.pub");
    writeFileSync(keptElsewhere, `${printed}\n`);
    const right = await verify(clean.dataDir, clean.sid, ["--key", keptElsewhere]);
    expect(right.stdout).toContain(`${clean.sid}  whole`);
    const bad = await verify(clean.dataDir, clean.sid, ["--key", "nonsense"]);
    expect(bad.stderr).toMatch(/^esr: verify: --key must be ed25519:<base64> or a file holding such keys/);
    expect(bad.exitCode).toBe(2);
  });
});

describe("terminal output", () => {
  test("a chunk of terminal output changed (valid gzip) breaks the chain", async () => {
    const { session, dataDir } = recordOnPty(["sh", "-c", "echo secret-output-line; sleep 0.3; echo more"], {
      flags: ["--config", fastConfig(), "--events", "command"],
    });
    expect(await session.exited()).toBe(0);
    const sid = session.sid();
    expect((await verify(dataDir, sid)).stdout).toContain(`${sid}  whole`);
    editGzipText(sessionFilePath(dataDir, sid, "chunks"), (t) => t.replace("secret", "public"));
    await expectBroken(dataDir, sid, /items \d+–\d+ are not what was recorded/);
  });
});

describe("sessions of a host", () => {
  test("a whole session's files deleted: verify --all names it from the host journal", async () => {
    const dataDir = tempDir();
    const config = fastConfig();
    const sids: string[] = [];
    for (let i = 0; i < 3; i++)
      sids.push((await record(["/bin/true"], { dataDir, flags: ["--config", config, "--events", "command"] })).sid);
    const all = await verify(dataDir, "--all");
    expect(all.exitCode).toBe(0);
    for (const sid of sids) expect(all.stdout).toContain(`${sid}  whole`);
    for (const name of [".index", ".chain", "-0.events.gz", "-0.session.command-events.gz"])
      rmSync(join(sessionsDir(dataDir), `${sids[1]}${name}`), { force: true });
    const after = await verify(dataDir, "--all");
    expect(after.stdout).toContain(`${sids[1]}  missing    the host journal records session #1 started at`);
    expect(after.stdout).toContain(`${sids[0]}  whole`);
    expect(after.exitCode).toBe(1);
  });

  test("a recorder killed with SIGKILL: verified up to its last checkpoint, and says so", async () => {
    const dataDir = tempDir();
    const pidFile = join(dataDir, "pid");
    const rec = await startRecording([
      "--data-dir",
      dataDir,
      "--config",
      fastConfig(),
      "--events",
      "command",
      "--",
      "sh",
      "-c",
      `/bin/true; echo $$ > ${pidFile}; exec sleep 60`,
    ]);
    try {
      await waitFor(
        "two interval checkpoints",
        () => {
          const path = chainFilePath(dataDir, rec.sid);
          return existsSync(path) && readFileSync(path, "utf8").split('"kind":"interval"').length > 2;
        },
        15000,
      );
      rec.proc.kill("SIGKILL");
      await rec.proc.exited;
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    }
    const v = await verify(dataDir, rec.sid);
    expect(v.stdout).toMatch(
      new RegExp(
        `^${rec.sid}  unsealed   verified up to item \\d+ \\(last checkpoint \\S+\\); \\d+ items after it unsigned: the recorder stopped without sealing`,
      ),
    );
    expect(v.exitCode).toBe(1);
  });
});

describe("forward security: the key an intruder finds today cannot rewrite what was sealed before", () => {
  /** A sealed session, then later sessions that move the host key on by several epochs. */
  async function sealedThenLater() {
    const dataDir = tempDir();
    const config = fastConfig();
    const flags = ["--config", config, "--events", "command"];
    const { sid } = await record(SCRIPT, { dataDir, flags });
    await Bun.sleep(1200);
    await record(["/bin/true"], { dataDir, flags });
    return { dataDir, sid };
  }

  /** The intruder's edit: an argv changed, the chain recomputed, its records rewritten to match. */
  function rewriteHistory(dataDir: string, sid: string, host: string): ChainRecord[] {
    editGzipText(sessionFilePath(dataDir, sid, "session.command"), (t) => t.replace('"three"', '"thrEE"'));
    const lines = new Map<string, string>();
    for (const type of ["events", "session.command"]) {
      const text = gunzipSync(readFileSync(sessionFilePath(dataDir, sid, type))).toString();
      for (const line of text.split("\n").slice(0, -1)) lines.set(`${type}\0${JSON.parse(line).ei}`, `${line}\n`);
    }
    const hasher = new ChainHasher(host, sid);
    const records = chainRecords(dataDir, sid);
    for (const r of records) {
      if (r.type === "flush") {
        for (const run of r.items)
          for (let i = 0; i < runLength(run); i++)
            hasher.add(run[0], Buffer.from(lines.get(`${run[0]}\0${run[1] + i}`)!));
        hasher.link(r.items);
        r.head = hasher.headHex();
      } else r.head = records.findLast((f) => f.type === "flush" && f.n === r.n)!.head;
    }
    return records;
  }

  test("checkpoints re-signed with the current epoch's key, at their old times: outside that epoch", async () => {
    const { dataDir, sid } = await sealedThenLater();
    const host = readFileSync(join(dataDir, "host_uuid"), "utf8").trim();
    const state = JSON.parse(readFileSync(join(dataDir, "integrity", "host.key"), "utf8"));
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(state.seed, "hex")]),
      format: "der",
      type: "pkcs8",
    });
    const records = rewriteHistory(dataDir, sid, host);
    for (const r of records)
      if (r.type === "checkpoint") {
        r.epoch = state.epoch;
        r.sig = sign(null, checkpointMessage(r), key).toString("base64");
      }
    writeChain(dataDir, sid, records);
    await expectBroken(
      dataDir,
      sid,
      /the start checkpoint at item 1 claims \S+, outside epoch \d+ .*signed with a later key/,
    );
  });

  test("re-signed and re-sealed through the host key itself, as root could: the journal holds the session twice", async () => {
    const { dataDir, sid } = await sealedThenLater();
    const host = readFileSync(join(dataDir, "host_uuid"), "utf8").trim();
    const records = rewriteHistory(dataDir, sid, host);
    const key = HostKey.open(dataDir, host, 1000);
    for (const r of records)
      if (r.type === "checkpoint") {
        const journal =
          r.kind === "interval"
            ? undefined
            : ({ reason: r.kind === "start" ? "start" : "seal", sid, n: r.n, head: r.head } as const);
        Object.assign(
          r,
          key.sign((s) => checkpointMessage({ ...r, ...s }), r.seq, journal),
        );
      }
    writeChain(dataDir, sid, records);
    await expectBroken(dataDir, sid, /started 2 times in the host journal \(re-signed with a later key\)/);
  });
});

describe("a session an earlier esr chained in the first format (esr-chain-1, a link per item)", () => {
  // Recorded by the build before format 2 (test/fixtures/chain-format-1): `sh -c 'echo hi; ls /'`.
  const FIXTURE = join(import.meta.dir, "..", "fixtures", "chain-format-1");
  const SID = "195944d6-2de5-40d0-9421-051cfaee5dce";

  test("verifies whole, and a change to it is still found", async () => {
    const v = await verify(copyDataDir(FIXTURE), SID);
    expect(v.stdout).toMatch(new RegExp(`^${SID}  whole      5 items, sealed `));
    expect(v.exitCode).toBe(0);
    const dir = copyDataDir(FIXTURE);
    editGzipText(join(sessionsDir(dir), `${SID}-0.session.command-events.gz`), (t) => t.replace('"ls"', '"LS"'));
    await expectBroken(dir, SID, /not what was recorded|damaged|not in/);
  });
});

describe("the host key reads only the journal's end (it grows by a line per session)", () => {
  const journal = (text: string) => {
    const path = join(tempDir(), "journal");
    writeFileSync(path, text);
    return path;
  };
  const line = (epoch: number, pad = 0) => `${JSON.stringify({ epoch, pad: "x".repeat(pad) })}\n`;

  test("the last line's epoch, however long the journal and its lines; a last line cut short is left out", () => {
    const many = Array.from({ length: 5000 }, (_, i) => line(i)).join("");
    expect(lastJournalEpoch(journal(many))).toBe(4999);
    expect(lastJournalEpoch(journal(many + '{"epoch":5000,"pu'))).toBe(4999);
    // Lines longer than the first read of the end, and a journal of one line, read further back.
    expect(lastJournalEpoch(journal(line(0) + line(1, 9000) + line(2, 20000)))).toBe(2);
    expect(lastJournalEpoch(journal(line(7, 50000)))).toBe(7);
    expect(lastJournalEpoch(journal(line(7, 50000) + '{"epoch":8'))).toBe(7);
  });

  test("none: no file, an empty one, or only a line cut short", () => {
    expect(lastJournalEpoch(join(tempDir(), "missing"))).toBe(-1);
    expect(lastJournalEpoch(journal(""))).toBe(-1);
    expect(lastJournalEpoch(journal('{"epoch":0,"pub"'))).toBe(-1);
  });
});
