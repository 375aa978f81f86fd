/** What /proc/PID/stat says of a process. */
import { readFileSync } from "node:fs";

export interface ProcessStat {
  ppid: number;
  /** clock ticks after boot: tells a process from a later one with the same pid */
  startTime: string;
}

/** Fields 4 and 22 of /proc/PID/stat; undefined once the process is gone. */
export function processStat(pid: number): ProcessStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: fields are counted after its last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), startTime: fields[19] ?? "" };
}
