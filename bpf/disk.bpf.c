// SPDX-License-Identifier: GPL-2.0
/*
 * Disk events: every open(2), openat(2), openat2(2) and creat(2) of a process in a recorded session.
 * One program at the generic sys_exit does it all: the return code is known, the returned fd names
 * the file the kernel opened (whatever path, symlink, dirfd or /proc/self/fd/N led there), the
 * arguments are still in the task's saved user registers (arm64 keeps the first in orig_x0) and
 * the path's pages resident, the kernel having just copied it. That copy is gone: what is read
 * from the path pointer now is whatever the caller's memory holds, which another thread may have
 * rewritten since, so it is only the requested path, and the file is named from the kernel's. The per-syscall tracepoints would say the
 * same but are classic tracepoints, slow to detach; a sys_enter twin would double the cost paid by
 * every syscall of the host for nothing.
 */
#include "esr.h"

#define O_ACCMODE 03
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_TMPFILE_BIT 020000000  /* __O_TMPFILE */
#define FMODE_WRITE 0x2

/* The syscalls of interest, whatever their number on this architecture and ABI. */
enum open_call { CALL_NONE, CALL_OPEN, CALL_CREAT, CALL_OPENAT, CALL_OPENAT2 };

#if defined(__TARGET_ARCH_x86)
/*
 * i386 calls (int 0x80, sysenter) have their own numbers and registers, and are decoded too: a
 * 32-bit binary must not open files unseen. The ABI is read only for the few candidate numbers,
 * since every syscall of the host comes through here.
 */
static __always_inline enum open_call open_call_of(struct pt_regs *regs, bool *compat, enum esr_reads reads)
{
	long nr = SYSCALL_NR(regs);

	if (nr != 2 && nr != 5 && nr != 8 && nr != 85 && nr != 257 && nr != 295 && nr != 437)
		return CALL_NONE;
	*compat = syscall_is_compat(reads >= ESR_READS_TASK);
	if (*compat)
		return nr == 5 ? CALL_OPEN : nr == 8 ? CALL_CREAT : nr == 295 ? CALL_OPENAT : nr == 437 ? CALL_OPENAT2 : CALL_NONE;
	return nr == 2 ? CALL_OPEN : nr == 85 ? CALL_CREAT : nr == 257 ? CALL_OPENAT : nr == 437 ? CALL_OPENAT2 : CALL_NONE;
}

#elif defined(__TARGET_ARCH_arm64)
/* arm64 has neither open(2) nor creat(2). 32-bit (AArch32) tasks are not decoded. */
static __always_inline enum open_call open_call_of(struct pt_regs *regs, bool *compat, enum esr_reads reads)
{
	long nr = SYSCALL_NR(regs);

	*compat = false;
	return nr == 56 ? CALL_OPENAT : nr == 437 ? CALL_OPENAT2 : CALL_NONE;
}

#else
#error "esr: unsupported architecture"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);  /* set by the recorder from disk_buffer_size */
} disk_events SEC(".maps");

/*
 * Where an event is built: too large for the stack. Claimed with claim_slot (bpf/esr.h), so that a
 * preempted run never shares its CPU's slot with the next one. The requested path is read with one
 * byte more than it can hold, into `overflow`, so that a path of exactly ESR_PATH_MAX - 1 bytes (the
 * longest the kernel accepts) is told apart from a longer, truncated one.
 */
struct open_slot {
	__u32 claims;
	__u32 _pad;
	struct esr_open_event event;
	char overflow[8];
};

/* The file behind a descriptor of the current task: files->fdt->fd[fd], or 0 (`typed`: see ESR_READ). */
static __always_inline struct file *file_of_fd(struct task_struct *task, long fd, bool typed)
{
	struct fdtable *fdt = ESR_READ(typed, task, files, fdt);
	struct file **fds;
	struct file *file = 0;

	if (!fdt || fd < 0 || fd >= ESR_READ(typed, fdt, max_fds))
		return 0;
	fds = ESR_READ(typed, fdt, fd);
	/* an array of pointers is not a BTF object: its slots are read with the helper */
	bpf_probe_read_kernel(&file, sizeof(file), fds + fd);
	return file;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_slot);
} open_scratch SEC(".maps");

/*
 * Whether the end of a file's path components (data[0..path_len), leaf first, see put_file) is the
 * ignored prefix `i` of the load config: its components and, before them, a component boundary
 * (something below the directory) or nothing (the path itself). Compared 8 bytes at a time.
 */
static __always_inline bool prefix_matches(__u32 i, const char *data, __u32 path_len)
{
	__u32 len = load_config.disk_ignore[i].len;
	__u32 start;

	if (load_config.disk_ignore[i].subtree ? path_len <= len : path_len != len)
		return false;
	start = (path_len - len) & (ESR_FILE_PATH_MAX - 1);
	if (start && data[(start - 1) & (ESR_FILE_PATH_MAX - 1)])  /* "/usr/xlib/f" does not lie below "/usr/lib/" */
		return false;
#pragma nounroll
	for (__u32 j = 0; j < ESR_DISK_IGNORE_PREFIX_MAX; j += 8) {
		__u64 word, want;

		if (j >= len)
			break;
		word = *(const __u64 *)&data[start + j];
		want = *(const volatile __u64 *)&load_config.disk_ignore[i].components[j];
		if (len - j < 8)  /* little-endian: the bytes of the path are the low ones */
			word &= (1ull << ((len - j) * 8)) - 1;
		if (word != want)
			return false;
	}
	return true;
}

/*
 * Whether an open is one the load config says not to record (esr.disk_filter): a read-only open(2)
 * or openat(2) that returned a file whose path the kernel resolved entirely, under one of the
 * ignored prefixes. Everything a session controls that could make this wrong leaves the open
 * recorded: the flags are the registers the call was made with (openat2's are in the caller's
 * memory, rewritable since, so openat2 is never ignored; creat(2) writes), the file must not be open
 * for writing whatever the flags said, and the path is the kernel's, complete, in the task's
 * namespace, still linked, never the requested one. The file is the one this call opened only if
 * no other thread can have closed the fd and opened another file at its number since (a file read
 * under a filtered name would then hide the open): so the task's fd table must be its own (a
 * thread, an io_uring worker or a CLONE_FILES child shares it). With no prefix configured the
 * verifier drops it all.
 */
static __always_inline bool open_ignored(enum open_call call, const struct esr_open_event *e, struct file *file,
					 struct task_struct *task, enum esr_reads reads)
{
	__u32 path_len = e->file.path_len;

	if (!load_config.disk_ignore_count)
		return false;
	if (call != CALL_OPEN && call != CALL_OPENAT)
		return false;
	if (e->open_flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE_BIT))
		return false;
	if (e->file.flags)  /* truncated, deleted, anonymous or outside the namespace: not where its name says */
		return false;
	if ((reads == ESR_READS_CAST ? ESR_CAST(file, struct file)->f_mode : BPF_CORE_READ(file, f_mode)) & FMODE_WRITE)
		return false;
	if (ESR_READ(reads >= ESR_READS_TASK, task, files, count.counter) != 1)
		return false;
	barrier_var(path_len);
	path_len &= ESR_FILE_PATH_MAX - 1;  /* a no-op (put_file keeps it below) the verifier can follow */
#pragma nounroll
	for (__u32 i = 0; i < ESR_DISK_IGNORE_PREFIXES; i++) {
		if (i >= load_config.disk_ignore_count)
			break;
		if (prefix_matches(i, e->data, path_len))
			return true;
	}
	return false;
}

/*
 * `reads`: how the task and the opened file are read (enum esr_reads). The recorder loads one of
 * the three programs below, the cheapest the kernel allows.
 */
static __always_inline int open_exit(struct pt_regs *regs, long ret, enum esr_reads reads)
{
	bool typed = reads >= ESR_READS_TASK;
	bool compat = false;
	enum open_call call = open_call_of(regs, &compat, reads);
	__u64 session_id;
	struct esr_session *s;
	struct open_slot *slot;
	struct esr_open_event *e;
	__u32 zero = 0;
	__u64 arg[3];
	const char *path;
	long n;
	__u32 len;

	if (call == CALL_NONE)
		return 0;
	s = current_session(ESR_KIND_DISK, &session_id);
	if (!s || !(slot = bpf_map_lookup_elem(&open_scratch, &zero)))
		return 0;
	if (!claim_slot(&slot->claims)) {
		__sync_fetch_and_add(&s->lost[ESR_KIND_DISK], 1);
		return 0;
	}

	e = &slot->event;
	fill_header(&e->hdr, session_id, reads);
	e->return_code = ret;
	e->flags = 0;
	syscall_args(regs, compat, arg);
	/* open and openat take an int: the register's upper half is not part of what was passed. */
	switch (call) {
	case CALL_OPEN:
		path = (const char *)arg[0];
		e->open_flags = (__u32)arg[1];
		break;
	case CALL_CREAT:  /* what creat(2) is defined as; 0 would read as O_RDONLY */
		path = (const char *)arg[0];
		e->open_flags = O_CREAT | O_WRONLY | O_TRUNC;
		break;
	case CALL_OPENAT:
		path = (const char *)arg[1];
		e->open_flags = (__u32)arg[2];
		break;
	default:  /* CALL_OPENAT2: the flags are the first field of its struct open_how */
		path = (const char *)arg[1];
		if (bpf_probe_read_user(&e->open_flags, sizeof(e->open_flags), (void *)arg[2]))
			e->open_flags = 0;
		break;
	}

	struct task_struct *task = typed ? bpf_get_current_task_btf() : (struct task_struct *)bpf_get_current_task();
	struct file *file = ret >= 0 ? file_of_fd(task, ret, typed) : 0;
	__u32 at = 0;

	__builtin_memset(&e->file, 0, sizeof(e->file));
	if (file) {
		put_file(&e->file, e->data, file, task, reads);
		e->flags |= ESR_OPEN_RESOLVED;
		at = e->file.path_len;
		if (open_ignored(call, e, file, task, reads)) {
			__sync_fetch_and_add(&s->filtered[ESR_KIND_DISK], 1);
			release_slot(&slot->claims);
			return 0;
		}
	}
	barrier_var(at);
	at &= ESR_FILE_PATH_MAX - 1;  /* a no-op (put_file keeps it below): data[at + ESR_PATH_MAX] + overflow bound the read */
	n = bpf_probe_read_user_str(&e->data[at], ESR_PATH_MAX + 1, path);
	if (n > ESR_PATH_MAX)
		e->flags |= ESR_OPEN_PATH_TRUNCATED;
	len = n <= 0 ? 0 : n > ESR_PATH_MAX ? ESR_PATH_MAX : n - 1;
	e->path_len = len;
	emit(&disk_events, s, ESR_KIND_DISK, e, __builtin_offsetof(struct esr_open_event, data) + at + len);
	release_slot(&slot->claims);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(disk_open, struct pt_regs *regs, long ret)
{
	return open_exit(regs, ret, ESR_READS_HELPER);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(disk_open_typed, struct pt_regs *regs, long ret)
{
	return open_exit(regs, ret, ESR_READS_TASK);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(disk_open_cast, struct pt_regs *regs, long ret)
{
	return open_exit(regs, ret, ESR_READS_CAST);
}
