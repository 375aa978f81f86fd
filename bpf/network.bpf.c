// SPDX-License-Identifier: GPL-2.0
/*
 * Network events: every TCP connect of a process in a recorded session, IPv4 and IPv6.
 * Read where the socket goes from CLOSE to SYN_SENT (sock:inet_sock_set_state): that happens in
 * tcp_v4/v6_connect, in the connecting task, after the route lookup has chosen the source address.
 * A cgroup connect4/connect6 hook would run before that choice (and for UDP too), so it could not
 * record the real source. Connects that fail before a SYN is sent (no route) are not recorded.
 */
#include "esr.h"
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);  /* set by the recorder from network_buffer_size */
} network_events SEC(".maps");

static __always_inline bool is_v4_mapped(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 && a->in6_u.u6_addr32[2] == bpf_htonl(0xffff);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(network_connect, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 session_id;
	struct esr_session *s;
	struct esr_connect_event e;
	struct in6_addr daddr6;

	if (oldstate != TCP_CLOSE || newstate != TCP_SYN_SENT)
		return 0;
	s = current_session(ESR_KIND_NETWORK, &session_id);
	/* The tracepoint also serves other inet protocols (SCTP, DCCP); only TCP is a connect here. */
	if (!s || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	__builtin_memset(&e, 0, sizeof(e));
	fill_header(&e.hdr, session_id);
	e.dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	BPF_CORE_READ_INTO(&daddr6, sk, __sk_common.skc_v6_daddr);
	/*
	 * For a mapped destination, tcp_v6_connect hands the socket to tcp_v4_connect, which fills
	 * the IPv4 fields; the IPv6 source is only set after it returns, i.e. after this tracepoint.
	 */
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6 && !is_v4_mapped(&daddr6)) {
		e.version = 6;
		BPF_CORE_READ_INTO(&e.src_addr, sk, __sk_common.skc_v6_rcv_saddr);
		__builtin_memcpy(e.dst_addr, &daddr6, sizeof(daddr6));
	} else {
		e.version = 4;
		BPF_CORE_READ_INTO((__be32 *)e.src_addr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__be32 *)e.dst_addr, sk, __sk_common.skc_daddr);
	}
	emit(&network_events, s, ESR_KIND_NETWORK, &e, sizeof(e));
	return 0;
}
