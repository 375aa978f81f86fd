// SPDX-License-Identifier: GPL-2.0
/*
 * Command events: every execve/execveat of a process in a recorded session.
 * A successful exec is read at sched_process_exec, in the new image, where the argv block is one
 * contiguous range of the new mm. A failed exec only shows at syscall exit, with the arguments
 * still in the caller's memory.
 */
#include "esr.h"

#if defined(__TARGET_ARCH_x86)
#define NR_execve 59
#define NR_execveat 322
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_execve 221
#define NR_execveat 281
#define SYSCALL_NR(regs) ((regs)->syscallno)
#else
#error "esr: unsupported architecture"
#endif

#define FAILED_EXEC_MAX_ARGS 256  /* args read one by one for a failed exec; more is marked truncated */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);  /* set by the recorder from command_buffer_size */
} command_events SEC(".maps");

/*
 * Where an event is built before it is copied to the ring: too large for the stack or for a per-CPU
 * map (32 KiB limit), so a plain array with one slot per CPU (the recorder sizes it). `busy` guards
 * against a preempted syscall-exit program sharing its CPU's slot with the next one. `overflow`
 * lets a failed exec read each argument with a constant size limit, which the verifier can bound;
 * what lands there is past ESR_ARGV_MAX and is not sent.
 */
struct exec_scratch {
	__u32 busy;
	__u32 _pad;
	struct esr_exec_event event;
	char overflow[ESR_ARGV_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);           /* set to the number of possible CPUs by the recorder */
	__type(key, __u32);
	__type(value, struct exec_scratch);
} per_cpu_scratch SEC(".maps");

static __always_inline struct exec_scratch *claim_scratch(struct esr_session *s)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *slot = bpf_map_lookup_elem(&per_cpu_scratch, &cpu);

	if (!slot)
		return 0;
	if (slot->busy) {
		__sync_fetch_and_add(&s->lost[ESR_KIND_COMMAND], 1);
		return 0;
	}
	slot->busy = 1;
	return slot;
}

static __always_inline void send(struct esr_session *s, struct exec_scratch *slot)
{
	struct esr_exec_event *e = &slot->event;
	__u64 size = e->path_len + e->argv_len;

	if (size > sizeof(e->data))
		size = sizeof(e->data);
	emit(&command_events, s, ESR_KIND_COMMAND, e, __builtin_offsetof(struct esr_exec_event, data) + size);
	slot->busy = 0;
}

/* Copies a kernel or user string to data[0]; returns its length without the NUL. */
static __always_inline __u32 put_path(struct esr_exec_event *e, const char *path, bool user)
{
	long n = user ? bpf_probe_read_user_str(e->data, ESR_PATH_MAX, path)
		      : bpf_probe_read_kernel_str(e->data, ESR_PATH_MAX, path);

	if (n <= 0)
		return 0;
	if (n == ESR_PATH_MAX)
		e->flags |= ESR_EXEC_PATH_TRUNCATED;
	return n - 1;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(command_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 session_id;
	struct esr_session *s = current_session(ESR_KIND_COMMAND, &session_id);
	struct exec_scratch *slot;
	struct esr_exec_event *e;

	if (!s || !(slot = claim_scratch(s)))
		return 0;
	e = &slot->event;
	fill_header(&e->hdr, session_id);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->return_code = 0;
	e->flags = 0;
	e->path_len = put_path(e, BPF_CORE_READ(bprm, filename), false);

	__u64 start = BPF_CORE_READ(task, mm, arg_start);
	__u64 total = BPF_CORE_READ(task, mm, arg_end) - start;
	__u32 len = total;
	__u32 at = e->path_len;

	if (total > ESR_ARGV_MAX) {
		len = ESR_ARGV_MAX;
		e->flags |= ESR_EXEC_ARGV_TRUNCATED;
	}
	if (at > ESR_PATH_MAX)  /* for the verifier: keeps data[at + len] inside data */
		at = ESR_PATH_MAX;
	if (len > ESR_ARGV_MAX)
		len = ESR_ARGV_MAX;
	e->argv_total = total;
	e->argv_len = bpf_probe_read_user(&e->data[at], len, (void *)start) ? 0 : len;
	send(s, slot);
	return 0;
}

/* Reads argv[] of a failed exec, string by string, after the path. */
static __always_inline void put_argv_array(struct esr_exec_event *e, const char *const *argv)
{
	__u32 at = e->path_len;
	bool complete = false;

	e->argv_total = 0;
	for (int i = 0; i < FAILED_EXEC_MAX_ARGS; i++) {
		const char *arg = 0;

		if (at >= sizeof(e->data))
			break;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg) {
			complete = true;
			break;
		}
		long n = bpf_probe_read_user_str(&e->data[at], ESR_ARGV_MAX, arg);
		if (n <= 0) {
			complete = true;
			break;
		}
		at += n;
		e->argv_total += n;
	}
	if (!complete || at > sizeof(e->data))
		e->flags |= ESR_EXEC_ARGV_TRUNCATED;
	if (at > sizeof(e->data))
		at = sizeof(e->data);
	e->argv_len = at - e->path_len;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(command_exec_failed, struct pt_regs *regs, long ret)
{
	long nr;
	__u64 session_id;
	struct esr_session *s;
	struct exec_scratch *slot;
	struct esr_exec_event *e;

	if (ret >= 0)
		return 0;
	nr = SYSCALL_NR(regs);
	if (nr != NR_execve && nr != NR_execveat)
		return 0;
	s = current_session(ESR_KIND_COMMAND, &session_id);
	if (!s || !(slot = claim_scratch(s)))
		return 0;
	e = &slot->event;
	fill_header(&e->hdr, session_id);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->return_code = ret;
	e->flags = 0;
	if (nr == NR_execve) {
		e->path_len = put_path(e, (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs), true);
		put_argv_array(e, (const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs));
	} else {
		e->path_len = put_path(e, (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs), true);
		put_argv_array(e, (const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs));
	}
	send(s, slot);
	return 0;
}
