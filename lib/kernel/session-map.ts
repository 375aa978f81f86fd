/**
 * The kernel's `sessions` map (struct esr_session of bpf/esr.h): which kinds a session records, and
 * what the kernel could not deliver for it and what it left out as configured (esr.disk_filter), per kind.
 */
import { esr_session } from "../events/kinds/kernel-layout.generated.ts";
import { KINDS, type EventKind, type LostCounts } from "../events/kinds/index.ts";

export const SESSION_VALUE_SIZE = esr_session.sizeof;
const SLOT = esr_session.lost.size / KINDS.length;

/** Never summed: a lost event was meant to be recorded, a filtered one was not. */
export interface SessionCounts {
  lost: LostCounts;
  filtered: LostCounts;
}

export function encodeSessionValue(kinds: readonly EventKind[]): Uint8Array {
  const value = new Uint8Array(SESSION_VALUE_SIZE);
  const mask = KINDS.reduce((m, k) => (kinds.includes(k.name) ? m | (1 << k.index) : m), 0);
  new DataView(value.buffer).setUint32(esr_session.kinds.offset, mask, true);
  return value;
}

export function decodeSessionValue(value: Uint8Array): SessionCounts {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const counts = (offset: number) =>
    Object.fromEntries(
      KINDS.map((k) => [k.name, Number(view.getBigUint64(offset + SLOT * k.index, true))]),
    ) as LostCounts;
  return { lost: counts(esr_session.lost.offset), filtered: counts(esr_session.filtered.offset) };
}
