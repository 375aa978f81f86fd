/**
 * Network events: the TCP connects, listens and accepted connections of a session's processes, IPv4
 * and IPv6 (bpf/network.bpf.c).
 */
import { commonFields, type CommonFields, type ProcessFields, type SessionIdentity } from "../audit-events.ts";
import { formatIPv4, formatIPv6 } from "../ip-address.ts";
import { decodeHeader, eventView, type EventKindSpec, type KernelEventHeader } from "./kind.ts";
import { esr_kind, esr_network_event, esr_network_operation } from "./kernel-layout.generated.ts";

/**
 * `operation`: Teleport's SessionNetwork.NetworkOperation for a connect (0; its 1, SEND, is not
 * recorded), esr's own values for the inbound side.
 */
export const NETWORK_OPERATION = {
  connect: esr_network_operation.ESR_NETWORK_CONNECT,
  listen: esr_network_operation.ESR_NETWORK_LISTEN,
  accept: esr_network_operation.ESR_NETWORK_ACCEPT,
} as const;
export type NetworkOperationName = keyof typeof NETWORK_OPERATION;
type NetworkOperation = (typeof NETWORK_OPERATION)[NetworkOperationName];

/** struct esr_network_event */
export interface KernelNetwork extends KernelEventHeader {
  operation: NetworkOperation;
  /** 4 also for an IPv6 socket whose peer (a listener: its own address) is IPv4-mapped: the addresses are IPv4 */
  version: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  dstPort: number;
  /** an accept's peer port; 0 otherwise */
  srcPort: number;
}

/**
 * Teleport's session.network, src and dst by the connection's direction: src sent the SYN, dst
 * received it. A connect's src is the session's address; a listen's dst is the address and port
 * listened on and its src the unspecified address; an accept's src is the peer, with its port in
 * esr's `src_port`, and its dst the session's listener. An accept has no process (the kernel
 * completes the handshake): pid 0, program "", and the listening socket's cgroup.
 */
export interface SessionNetworkEvent extends CommonFields<"session.network", "T4002I">, ProcessFields {
  src_addr: string;
  dst_addr: string;
  dst_port: number;
  version: 4 | 6;
  operation: NetworkOperation;
  /** Teleport's: 0 means observed (not denied) */
  action: number;
  /** esr's, on an accept only: the peer's port */
  src_port?: number;
}

const L = esr_network_event;
const NETWORK_ACTION_OBSERVED = 0;

/** The operation's name, or the number for one this esr does not know (a stored event is read back, not trusted). */
export function networkOperationName(operation: number): NetworkOperationName | string {
  const name = (Object.keys(NETWORK_OPERATION) as NetworkOperationName[]).find(
    (k) => NETWORK_OPERATION[k] === operation,
  );
  return name ?? `operation ${operation}`;
}

function decode(bytes: Uint8Array): KernelNetwork {
  const view = eventView(bytes);
  const version = view.getUint16(L.version.offset, true) === 6 ? 6 : 4;
  const format = version === 6 ? formatIPv6 : formatIPv4;
  const addr = (field: { offset: number; size: number }) =>
    format(bytes.subarray(field.offset, field.offset + field.size));
  return {
    ...decodeHeader(view, bytes),
    operation: view.getUint16(L.operation.offset, true) as NetworkOperation,
    version,
    dstPort: view.getUint16(L.dst_port.offset, true),
    srcPort: view.getUint16(L.src_port.offset, true),
    srcAddr: addr(L.src_addr),
    dstAddr: addr(L.dst_addr),
  };
}

function build(id: SessionIdentity, ei: number, rec: KernelNetwork, time: Date): SessionNetworkEvent {
  return {
    ...commonFields(id, "session.network", "T4002I", ei, time),
    action: NETWORK_ACTION_OBSERVED,
    audit_session_id: rec.auditSessionId,
    cgroup_id: Number(rec.cgroupId),
    dst_addr: rec.dstAddr,
    dst_port: rec.dstPort,
    operation: rec.operation,
    pid: rec.pid,
    program: rec.comm,
    src_addr: rec.srcAddr,
    ...(rec.operation === NETWORK_OPERATION.accept ? { src_port: rec.srcPort } : {}),
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
} as const satisfies EventKindSpec<"network", KernelNetwork, SessionNetworkEvent>;
