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

/* A program at `section` that does nothing. */
#define FLOOR_PROGRAM(name, section) \
	SEC(section) int name(void *ctx) { return 0; }

FLOOR_PROGRAM(floor_sys_exit, "tp_btf/sys_exit")
FLOOR_PROGRAM(floor_sched_process_exec, "tp_btf/sched_process_exec")

/* What else the syscall exit could be hooked with, for scripts/bench-hooks.ts. */
FLOOR_PROGRAM(floor_sys_exit_second, "tp_btf/sys_exit")
FLOOR_PROGRAM(floor_raw_sys_exit, "raw_tracepoint/sys_exit")
FLOOR_PROGRAM(floor_sys_exit_openat, "tracepoint/syscalls/sys_exit_openat")
