/**
 * A session's files read the way Teleport's file-session code reads them (lib/events/auditlog.go:
 * readSessionIndex, eventsFile, GetSessionEvents; the DiskSessionLogger's `.completed` marker):
 * the index's entries grouped by type and sorted by `index`; the events after N are those of the
 * last file indexed at or below N, its first N lines skipped (lines, not `ei`s: Teleport's own
 * writers renumber so that they agree), and of every later file. Written here from that
 * description, not copied.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

export interface TeleportIndexEntry {
  file_name: string;
  type: string;
  index: number;
  offset: number;
}

export class TeleportSessionReader {
  readonly entries: TeleportIndexEntry[];

  constructor(
    private readonly sessionsDir: string,
    readonly sid: string,
  ) {
    this.entries = readFileSync(join(sessionsDir, `${sid}.index`), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as TeleportIndexEntry);
  }

  /** The files of one type, as Teleport sorts them: by index (chunks: by offset). */
  files(type: string): TeleportIndexEntry[] {
    const key = (e: TeleportIndexEntry) => (type === "chunks" ? e.offset : e.index);
    return this.entries.filter((e) => e.type === type).sort((a, b) => key(a) - key(b));
  }

  /** The JSON lines of one file (Go's gzip reader reads concatenated members as one stream). */
  lines(entry: TeleportIndexEntry): Record<string, unknown>[] {
    return gunzipSync(readFileSync(join(this.sessionsDir, entry.file_name)))
      .toString("utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  /** The events of one type from N on; Teleport's "not found" when no file is indexed at or below N. */
  eventsAfter(type: string, n: number): Record<string, unknown>[] {
    const files = this.files(type);
    const first = files.findLastIndex((e) => e.index <= n);
    if (first < 0) throw new Error(`${n} not found`);
    return files.slice(first).flatMap((e, i) => (i === 0 ? this.lines(e).slice(n) : this.lines(e)));
  }

  /** Teleport's sign that the session's files are final. */
  get completed(): boolean {
    const marker = join(this.sessionsDir, `${this.sid}.completed`);
    return existsSync(marker) && readFileSync(marker, "utf8") === "completed";
  }
}
