// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of esr's hooks, for scripts/bench.ts: programs at the same tracepoints that do nothing.
 * What a host pays with these attached is what the kernel charges for the hook alone (the syscall
 * slow path every task takes once a sys_exit program is attached, the program's dispatch), which no
 * recorder using these hooks can go below.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int floor_sys_exit(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int floor_sched_process_exec(__u64 *ctx)
{
	return 0;
}

/* What else the syscall exit could be hooked with, for scripts/bench-hooks.ts. */
SEC("tp_btf/sys_exit")
int floor_sys_exit_second(__u64 *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int floor_raw_sys_exit(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int floor_sys_exit_openat(void *ctx)
{
	return 0;
}
