/** Network events: every TCP connect of a session's processes, IPv4 and IPv6 (bpf/network.bpf.c). */
import { commonFields, type CommonFields, type ProcessFields, type SessionIdentity } from "../audit-events.ts";
import { formatIPv4, formatIPv6 } from "../ip-address.ts";
import { decodeHeader, eventView, type EventKindSpec, type KernelEventHeader } from "./kind.ts";
import { esr_connect_event, esr_kind } from "./kernel-layout.generated.ts";

/** struct esr_connect_event */
export interface KernelConnect extends KernelEventHeader {
  /** 4 also for an IPv6 socket connecting to an IPv4-mapped address: the addresses are IPv4 */
  version: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  dstPort: number;
}

export interface SessionNetworkEvent extends CommonFields<"session.network", "T4002I">, ProcessFields {
  src_addr: string;
  dst_addr: string;
  dst_port: number;
  version: 4 | 6;
  /** Teleport's: 0 is a connect */
  operation: number;
  /** Teleport's: 0 means observed (not denied) */
  action: number;
}

const L = esr_connect_event;
const NETWORK_OPERATION_CONNECT = 0;
const NETWORK_ACTION_OBSERVED = 0;

function decode(bytes: Uint8Array): KernelConnect {
  const view = eventView(bytes);
  const version = view.getUint16(L.version.offset, true) === 6 ? 6 : 4;
  const format = version === 6 ? formatIPv6 : formatIPv4;
  const addr = (field: { offset: number; size: number }) =>
    format(bytes.subarray(field.offset, field.offset + field.size));
  return {
    ...decodeHeader(view, bytes),
    version,
    dstPort: view.getUint16(L.dst_port.offset, true),
    srcAddr: addr(L.src_addr),
    dstAddr: addr(L.dst_addr),
  };
}

function build(id: SessionIdentity, ei: number, rec: KernelConnect, time: Date): SessionNetworkEvent {
  return {
    ...commonFields(id, "session.network", "T4002I", ei, time),
    action: NETWORK_ACTION_OBSERVED,
    audit_session_id: rec.auditSessionId,
    cgroup_id: Number(rec.cgroupId),
    dst_addr: rec.dstAddr,
    dst_port: rec.dstPort,
    operation: NETWORK_OPERATION_CONNECT,
    pid: rec.pid,
    program: rec.comm,
    src_addr: rec.srcAddr,
    version: rec.version,
  };
}

export const networkKind = {
  name: "network",
  index: esr_kind.ESR_KIND_NETWORK,
  ring: "network_events",
  bufferSizeKey: "network_buffer_size",
  defaultBufferPages: 8,
  event: "session.network",
  code: "T4002I",
  decode,
  build,
} as const satisfies EventKindSpec<"network", KernelConnect, SessionNetworkEvent>;
