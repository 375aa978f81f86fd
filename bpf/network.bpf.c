// SPDX-License-Identifier: GPL-2.0
/*
 * Network events: the TCP connects, listens and accepted connections of a recorded session, IPv4
 * and IPv6, all read where a TCP socket changes state (sock:inet_sock_set_state).
 * - connect: CLOSE to SYN_SENT, in tcp_v4/v6_connect, in the connecting task, after the route lookup
 *   has chosen the source address. A cgroup connect4/connect6 hook would run before that choice (and
 *   for UDP too), so it could not record the real source. Connects that fail before a SYN is sent
 *   (no route) are not recorded.
 * - listen: CLOSE to LISTEN, in inet_csk_listen_start, in the listening task.
 * - accept: SYN_RECV to ESTABLISHED on the new child socket, when the handshake completes: the
 *   kernel's fact that a peer is connected to the session's listener, whether or not a process ever
 *   calls accept(). It runs in softirq, on whatever task the CPU was running (often the connecting
 *   peer, which may be outside the session), so the session is the socket's: the cgroup the child
 *   inherited from its listener, i.e. where the listening socket was created. No process is known
 *   there: pid 0, no comm. A simultaneous open (both sides connecting at once) passes through the
 *   same transition and is reported as an accept too, after its connect.
 */
#include "esr.h"
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);  /* set by the recorder from network_buffer_size */
} network_events SEC(".maps");

/* The two layouts of a socket's cgroup: a pointer from Linux 5.15 on, a tagged word before. */
struct sock_cgroup_data___ptr {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct sock___ptr {
	struct sock_cgroup_data___ptr sk_cgrp_data;
} __attribute__((preserve_access_index));

struct sock_cgroup_data___word {
	__u64 val;
} __attribute__((preserve_access_index));

struct sock___word {
	struct sock_cgroup_data___word sk_cgrp_data;
} __attribute__((preserve_access_index));

/*
 * The cgroup2 cgroup a socket was created in. Before 5.15 the word holds the cgroup pointer, or,
 * once a cgroup v1 net_prio/net_cls id was set on any socket of the host (low bits tagged), the ids
 * instead: the cgroup is lost, and so is the session.
 */
static __always_inline struct cgroup *socket_cgroup(const struct sock *sk)
{
	__u64 word;

	if (bpf_core_field_exists(struct sock_cgroup_data___ptr, cgroup))
		return BPF_CORE_READ((struct sock___ptr *)sk, sk_cgrp_data.cgroup);
	word = BPF_CORE_READ((struct sock___word *)sk, sk_cgrp_data.val);
	return word & 3 ? 0 : (struct cgroup *)word;
}

static __always_inline bool is_v4_mapped(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 && a->in6_u.u6_addr32[2] == bpf_htonl(0xffff);
}

/*
 * The local and remote ends of a socket into an event, as src and dst by the connection's direction
 * (see struct esr_network_event). The version is decided by `decisive`, the address whose form says
 * what goes on the wire: the peer's for a connection, the socket's own for a listener.
 */
static __always_inline void put_addresses(struct esr_network_event *e, const struct sock *sk, bool local_is_src, bool local_decides)
{
	struct in6_addr local6, remote6;
	__u8 *local = local_is_src ? e->src_addr : e->dst_addr;
	__u8 *remote = local_is_src ? e->dst_addr : e->src_addr;

	BPF_CORE_READ_INTO(&local6, sk, __sk_common.skc_v6_rcv_saddr);
	BPF_CORE_READ_INTO(&remote6, sk, __sk_common.skc_v6_daddr);
	/*
	 * For a mapped peer the kernel fills the IPv4 fields too (tcp_v4_connect, tcp_v6_syn_recv_sock);
	 * the IPv6 source of a mapped connect is only set after the CLOSE→SYN_SENT tracepoint.
	 */
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6 && !is_v4_mapped(local_decides ? &local6 : &remote6)) {
		e->version = 6;
		__builtin_memcpy(local, &local6, sizeof(local6));
		__builtin_memcpy(remote, &remote6, sizeof(remote6));
	} else {
		e->version = 4;
		BPF_CORE_READ_INTO((__be32 *)local, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__be32 *)remote, sk, __sk_common.skc_daddr);
	}
}

/* A connect or a listen: in the task that made the call. */
static __always_inline void record_task_socket(const struct sock *sk, enum esr_network_operation operation)
{
	__u64 session_id;
	struct esr_session *s = current_session(ESR_KIND_NETWORK, &session_id);
	struct esr_network_event e;

	if (!s)
		return;
	__builtin_memset(&e, 0, sizeof(e));
	fill_header(&e.hdr, session_id, ESR_READS_HELPER);
	e.operation = operation;
	if (operation == ESR_NETWORK_CONNECT) {
		put_addresses(&e, sk, true, false);
		e.dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	} else {
		put_addresses(&e, sk, false, true);
		__builtin_memset(e.src_addr, 0, sizeof(e.src_addr));  /* any peer */
		e.dst_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	}
	emit(&network_events, s, ESR_KIND_NETWORK, &e, sizeof(e));
}

/* An accepted connection: in softirq, scoped by the socket's own cgroup. */
static __always_inline void record_accept(const struct sock *sk)
{
	__u64 session_id;
	struct cgroup *cgrp = socket_cgroup(sk);
	struct esr_session *s = session_of_cgroup(ESR_KIND_NETWORK, cgrp, &session_id);
	struct esr_network_event e;

	if (!s)
		return;
	__builtin_memset(&e, 0, sizeof(e));
	e.hdr.session_id = session_id;
	e.hdr.cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	e.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	e.operation = ESR_NETWORK_ACCEPT;
	put_addresses(&e, sk, false, false);
	e.dst_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.src_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	emit(&network_events, s, ESR_KIND_NETWORK, &e, sizeof(e));
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(network_socket_state, const struct sock *sk, const int oldstate, const int newstate)
{
	bool connect = oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT;
	bool listen = oldstate == TCP_CLOSE && newstate == TCP_LISTEN;
	bool accept = oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED;

	if (!connect && !listen && !accept)
		return 0;
	/* The tracepoint also serves other inet protocols (SCTP, DCCP). */
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (accept)
		record_accept(sk);
	else
		record_task_socket(sk, connect ? ESR_NETWORK_CONNECT : ESR_NETWORK_LISTEN);
	return 0;
}
