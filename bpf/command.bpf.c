// SPDX-License-Identifier: GPL-2.0
/*
 * Command events: every execve/execveat of a process in a recorded session.
 * A successful exec is read at sched_process_exec, in the new image, where the argv block is one
 * contiguous range of the new mm, and where the kernel has resolved what it executed: the file
 * (bprm->file, whatever the path named: a symlink, /dev/fd/N, a memfd) and, for a script, the
 * interpreter. A failed exec only shows at syscall exit, with the arguments still in the caller's
 * memory; i386 calls (int 0x80 from any process) are decoded too.
 */
#include "esr.h"

#if defined(__TARGET_ARCH_x86)
#define NR_execve 59
#define NR_execveat 322
#define NR32_execve 11            /* i386 numbers: 11 is munmap natively, so the ABI is checked */
#define NR32_execveat 358
#define IS_EXECVE(nr, compat) ((compat) ? (nr) == NR32_execve : (nr) == NR_execve)
#elif defined(__TARGET_ARCH_arm64)
#define NR_execve 221
#define NR_execveat 281
#define IS_EXECVE(nr, compat) ((nr) == NR_execve)
#else
#error "esr: unsupported architecture"
#endif

#define FAILED_EXEC_MAX_ARGS 256  /* args read one by one for a failed exec; more is marked truncated */

/* Where each part of data starts at the latest: each part is read with a constant size limit. */
#define INTERP_AT_MAX ESR_PATH_MAX
#define EXE_AT_MAX (INTERP_AT_MAX + ESR_PATH_MAX)
#define ARGV_AT_MAX (EXE_AT_MAX + ESR_FILE_PATH_MAX)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);  /* set by the recorder from command_buffer_size */
} command_events SEC(".maps");

/*
 * Where an event is built before it is copied to the ring: too large for the stack or for a per-CPU
 * map (32 KiB limit), so a plain array with one slot per CPU (the recorder sizes it), claimed with
 * claim_slot (bpf/esr.h) so that a preempted program never shares it with the next one. `overflow`
 * lets a failed exec read each argument with a constant size limit, which the verifier can bound;
 * what lands there is past the end of data and is not sent.
 */
struct exec_scratch {
	__u32 claims;
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
	if (!claim_slot(&slot->claims)) {
		__sync_fetch_and_add(&s->lost[ESR_KIND_COMMAND], 1);
		return 0;
	}
	return slot;
}

static __always_inline void send(struct esr_session *s, struct exec_scratch *slot)
{
	struct esr_exec_event *e = &slot->event;
	__u64 size = (__u64)e->path_len + e->interp_len + e->exe.path_len + e->argv_len;

	if (size > sizeof(e->data))
		size = sizeof(e->data);
	emit(&command_events, s, ESR_KIND_COMMAND, e, __builtin_offsetof(struct esr_exec_event, data) + size);
	release_slot(&slot->claims);
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

/* The interpreter of a script (bprm->interp is the path itself for anything else). */
static __always_inline void put_interp(struct esr_exec_event *e, struct linux_binprm *bprm)
{
	const char *interp = BPF_CORE_READ(bprm, interp);
	__u32 at = e->path_len;
	long n;

	e->interp_len = 0;
	if (!interp || interp == BPF_CORE_READ(bprm, filename))
		return;
	if (at > INTERP_AT_MAX)
		at = INTERP_AT_MAX;
	n = bpf_probe_read_kernel_str(&e->data[at], ESR_PATH_MAX, interp);
	if (n <= 0)
		return;
	if (n == ESR_PATH_MAX)
		e->flags |= ESR_EXEC_INTERP_TRUNCATED;
	e->interp_len = n - 1;
}

/* The namespaces the task is in, by inode number (what /proc/PID/ns/ links name). */
static __always_inline void put_namespaces(struct esr_exec_event *e, struct task_struct *task)
{
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	e->_pad = 0;
}

/* The executed file, after the path and interpreter (see put_file). */
static __always_inline void put_exe(struct esr_exec_event *e, struct file *file, struct task_struct *task)
{
	__u32 at = e->path_len + e->interp_len;

	if (at > EXE_AT_MAX)
		at = EXE_AT_MAX;
	barrier_var(at);
	at &= 0x3fff;  /* a no-op the verifier can follow (see the argv read) */
	put_file(&e->exe, &e->data[at], file, task, ESR_READS_HELPER);
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
	fill_header(&e->hdr, session_id, ESR_READS_HELPER);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->return_code = 0;
	e->flags = 0;
	put_namespaces(e, task);
	e->path_len = put_path(e, BPF_CORE_READ(bprm, filename), false);
	put_interp(e, bprm);
	put_exe(e, BPF_CORE_READ(bprm, file), task);

	__u64 start = BPF_CORE_READ(task, mm, arg_start);
	__u64 total = BPF_CORE_READ(task, mm, arg_end) - start;
	__u32 len = total;
	__u32 at = e->path_len + e->interp_len + e->exe.path_len;

	if (total > ESR_ARGV_MAX) {
		len = ESR_ARGV_MAX;
		e->flags |= ESR_EXEC_ARGV_TRUNCATED;
	}
	if (len > ESR_ARGV_MAX)
		len = ESR_ARGV_MAX;
	if (at > ARGV_AT_MAX)
		at = ARGV_AT_MAX;
	/*
	 * For the verifier, which loses the bound above to clang's select: a mask it can follow. It
	 * keeps data[at + len] inside the slot (data is followed by overflow), and changes nothing.
	 */
	_Static_assert(ARGV_AT_MAX < 0x4000 && 0x4000 + ESR_ARGV_MAX <= sizeof(((struct esr_exec_event *)0)->data) + ESR_ARGV_MAX, "argv bound");
	barrier_var(at);
	at &= 0x3fff;
	e->argv_total = total;
	e->argv_len = len;
	if (bpf_probe_read_user(&e->data[at], len, (void *)start)) {
		/* Never a silently empty argv: what could not be read is marked as cut. */
		e->argv_len = 0;
		e->flags |= ESR_EXEC_ARGV_TRUNCATED;
	}
	send(s, slot);
	return 0;
}

/*
 * Reads argv[] of a failed exec, string by string, after the path. `ptr_size` is 8, or 4 for an
 * i386 caller, whose argv is an array of 32-bit pointers.
 */
static __always_inline void put_argv_array(struct esr_exec_event *e, const void *argv, __u32 ptr_size)
{
	__u32 at = e->path_len;
	bool complete = false;

	e->argv_total = 0;
	for (int i = 0; i < FAILED_EXEC_MAX_ARGS; i++) {
		__u64 arg = 0;

		if (at >= sizeof(e->data))
			break;
		if (bpf_probe_read_user(&arg, ptr_size == 4 ? 4 : 8, argv + (__u64)i * ptr_size) || !arg) {
			complete = true;
			break;
		}
		long n = bpf_probe_read_user_str(&e->data[at], ESR_ARGV_MAX, (const char *)arg);
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
	bool compat = false;
	__u64 session_id;
	struct esr_session *s;
	struct exec_scratch *slot;
	struct esr_exec_event *e;
	__u64 arg[3];
	int at;

	if (ret >= 0)
		return 0;
	nr = SYSCALL_NR(regs);
#if defined(__TARGET_ARCH_x86)
	if (nr != NR_execve && nr != NR_execveat && nr != NR32_execve && nr != NR32_execveat)
		return 0;
	compat = syscall_is_compat(false);
	if (compat ? nr != NR32_execve && nr != NR32_execveat : nr != NR_execve && nr != NR_execveat)
		return 0;
#else
	if (nr != NR_execve && nr != NR_execveat)
		return 0;
#endif
	s = current_session(ESR_KIND_COMMAND, &session_id);
	if (!s || !(slot = claim_scratch(s)))
		return 0;
	e = &slot->event;
	fill_header(&e->hdr, session_id, ESR_READS_HELPER);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->return_code = ret;
	e->flags = ESR_EXEC_FROM_CALLER;
	e->interp_len = 0;
	__builtin_memset(&e->exe, 0, sizeof(e->exe));
	put_namespaces(e, task);
	/* execve(path, argv, …), execveat(dirfd, path, argv, …), in either ABI */
	syscall_args(regs, compat, arg);
	at = IS_EXECVE(nr, compat) ? 0 : 1;
	e->path_len = put_path(e, (const char *)arg[at], true);
	put_argv_array(e, (const void *)arg[at + 1], compat ? 4 : 8);
	send(s, slot);
	return 0;
}
