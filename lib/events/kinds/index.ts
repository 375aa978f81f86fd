/**
 * The table of enhanced event kinds. A new kind is a BPF program (bpf/<name>.bpf.c, its programs
 * named <name>_…, writing to ring <name>_events, its index in `enum esr_kind` of bpf/esr.h) and
 * one entry here, defined in its own file beside this one; configuration, the kernel side, the
 * files, replay and summaries all read this table.
 */
import { commandKind } from "./command.ts";
import { diskKind } from "./disk.ts";
import { networkKind } from "./network.ts";
import type { EventKindSpec, KernelEventHeader } from "./kind.ts";

export const KINDS = [commandKind, diskKind, networkKind] as const;

type Kind = (typeof KINDS)[number];
export type EventKind = Kind["name"];
/** Any kind's entry, for code that handles every kind alike (a record is decoded and built by the same entry). */
export type AnyEventKind = EventKindSpec<EventKind, KernelEventHeader & any, KindEvent>;
/** The audit events of the enhanced kinds. */
export type KindEvent = ReturnType<Kind["build"]>;
/** Per kind: events the kernel could not deliver. */
export type LostCounts = Record<EventKind, number>;

export const EVENT_KINDS: EventKind[] = KINDS.map((k) => k.name);
/** What a user without roles, or with roles that name none, records (Teleport's default). */
export const DEFAULT_EVENTS: EventKind[] = ["command", "network"];

const byName = new Map<string, AnyEventKind>(KINDS.map((k) => [k.name, k as AnyEventKind]));

export function isEventKind(value: unknown): value is EventKind {
  return typeof value === "string" && byName.has(value);
}

export function kindNamed(name: EventKind): AnyEventKind {
  return byName.get(name)!;
}

/** The kind whose events have this `event` name, if it is an enhanced one. */
export function kindOfEvent(event: string): AnyEventKind | undefined {
  return byEvent.get(event);
}

const byEvent = new Map<string, AnyEventKind>(KINDS.map((k) => [k.event, k as AnyEventKind]));

export function noLoss(): LostCounts {
  return Object.fromEntries(EVENT_KINDS.map((k) => [k, 0])) as LostCounts;
}

export type { KernelExec, SessionCommandEvent } from "./command.ts";
export type { KernelOpen, SessionDiskEvent } from "./disk.ts";
export type { KernelNetwork, SessionNetworkEvent } from "./network.ts";
export type { KernelEventHeader } from "./kind.ts";
