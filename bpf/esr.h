/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel/user boundary of esr: every struct the BPF programs write to a ring buffer, the
 * session map they all share, and the enums of their kinds and flags. This file is the one source:
 * scripts/build.ts compiles bpf/layout.c (which includes it) for each target architecture and
 * generates lib/events/kinds/kernel-layout.generated.ts from its BTF, so the decoders read fields by
 * name and a change here reaches them with the next build.
 */
#ifndef ESR_H
#define ESR_H

#ifndef ESR_USER_SIDE_ONLY
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#endif

#define ESR_COMM_LEN 16
#define ESR_PATH_MAX 4096      /* longest path recorded; longer ones are marked truncated */
#define ESR_ARGV_MAX 32768     /* argv bytes recorded per exec; more is marked truncated */

enum esr_kind { ESR_KIND_COMMAND = 0, ESR_KIND_DISK = 1, ESR_KIND_NETWORK = 2, ESR_KIND_COUNT = 3 };

/* Value of the `sessions` map, keyed by the session cgroup's id (an esr slice or a systemd scope). */
struct esr_session {
	__u32 kinds;                  /* bit (1 << enum esr_kind) set: record that kind */
	__u32 _pad;
	__u64 lost[ESR_KIND_COUNT];   /* events the ring buffer could not take, per kind */
	__u64 filtered[ESR_KIND_COUNT]; /* events not recorded because the load config says to (esr.disk_filter), per kind */
};

/* Start of every event. */
struct esr_event_header {
	__u64 session_id;             /* cgroup id of the session's cgroup (key of `sessions`) */
	__u64 cgroup_id;              /* the task's own cgroup: the session's or a child of it */
	__u64 ktime_ns;               /* CLOCK_BOOTTIME: orders events of all kinds, dates them */
	__u32 pid;                    /* thread-group id */
	__u32 audit_session_id;       /* the task's audit session id (auditd's ses=); 4294967295: unset; 0: kernel without audit */
	char comm[ESR_COMM_LEN];
};

/*
 * The file an open returned or an exec ran, read from its struct file: nothing of it comes from the
 * caller's memory. Its path is walked in the kernel, leaf first, by put_file() below.
 */
#define ESR_FILE_PATH_MAX 4096 /* bound of a file's path components, leaf first, NULs included (path_len < it) */
#define ESR_FILE_WALK_STEPS 48 /* path components and mount crossings walked; more is marked truncated */
#define ESR_FS_TYPE_LEN 16

/* esr_file.flags */
enum esr_file_flag {
	ESR_FILE_TRUNCATED = 1,         /* cut at the walk's bound: the root side of the path is missing */
	ESR_FILE_DELETED = 2,           /* no link left: unlinked, O_TMPFILE, a memfd */
	ESR_FILE_ANONYMOUS = 4,         /* no directory entry, a name the kernel makes up (d_dname): a memfd, pipe, socket, anon inode */
	ESR_FILE_OUTSIDE_NAMESPACE = 8, /* its mount is not in the task's mount namespace (a detached open_tree(2) mount, another namespace's via /proc/PID/root): the path is from its filesystem's root */
};

struct esr_file {
	__u64 ino;
	__u32 dev;                    /* the superblock's s_dev: major << 20 | minor */
	__u32 flags;                  /* enum esr_file_flag bits */
	__u32 path_len;               /* bytes of the path's components, NULs included; 0: no file */
	__u32 _pad;
	char fs_type[ESR_FS_TYPE_LEN]; /* the filesystem's name: ext4, tmpfs, pipefs… */
};

/* esr_exec_event.flags */
enum esr_exec_flag {
	ESR_EXEC_PATH_TRUNCATED = 1,
	ESR_EXEC_ARGV_TRUNCATED = 2,
	ESR_EXEC_INTERP_TRUNCATED = 4,
	ESR_EXEC_FROM_CALLER = 8,     /* path and argv were read from the caller's memory (a failed exec) */
};

/*
 * An execve/execveat, successful (read after the exec, in the new image) or failed.
 * data holds, one after the other: the path as passed (bprm->filename: "/dev/fd/3" for an fd), the
 * interpreter the kernel ran for a script or binfmt_misc file (bprm->interp when it is not the
 * path), the executed file's path components (exe.path_len bytes, see put_file), and argv.
 * A failed exec has no interpreter and no file; its path and argv are what the caller's memory
 * held at syscall exit.
 */
struct esr_exec_event {
	struct esr_event_header hdr;
	__u32 ppid;
	__s32 return_code;            /* 0, or -errno */
	__u32 path_len;               /* bytes of path at data[0], no NUL */
	__u32 argv_len;               /* bytes of NUL-separated argv (argv[0] included), last in data */
	__u32 argv_total;             /* bytes of argv the process had (> argv_len when truncated) */
	__u32 flags;                  /* enum esr_exec_flag bits */
	__u32 interp_len;             /* bytes of interpreter after the path, no NUL; 0: none */
	__u32 mnt_ns;                 /* inode numbers of the task's mount and user namespaces */
	__u32 user_ns;
	__u32 _pad;
	struct esr_file exe;          /* bprm->file: what ran, whatever the path named */
	char data[ESR_PATH_MAX + ESR_PATH_MAX + ESR_FILE_PATH_MAX + ESR_ARGV_MAX];
};

/* esr_open_event.flags */
enum esr_open_flag {
	ESR_OPEN_PATH_TRUNCATED = 1,  /* the requested path was longer than ESR_PATH_MAX */
	ESR_OPEN_RESOLVED = 2,        /* `file` is the file the returned fd refers to */
};

/*
 * An open(2), openat(2), openat2(2) or creat(2), read at syscall exit: the file the returned fd
 * refers to (its path components first in data), then the path as the process passed it, read back
 * from its memory (relative paths stay relative), the flags as passed and what the call returned.
 */
struct esr_open_event {
	struct esr_event_header hdr;
	__s32 return_code;            /* fd, or -errno */
	__u32 flags;                  /* enum esr_open_flag bits */
	__u64 open_flags;             /* openat2's are 64 bits; creat(2) is O_CREAT|O_WRONLY|O_TRUNC */
	__u32 path_len;               /* bytes of the requested path after the file's components, no NUL */
	__u32 _pad;
	struct esr_file file;         /* path_len 0 when the open failed */
	char data[ESR_FILE_PATH_MAX + ESR_PATH_MAX];
};

/*
 * esr_network_event.operation: Teleport's SessionNetwork.NetworkOperation values (CONNECT 0, SEND 1,
 * which esr does not record) and esr's own from 2 on, for the inbound side.
 */
enum esr_network_operation {
	ESR_NETWORK_CONNECT = 0,
	ESR_NETWORK_LISTEN = 2,
	ESR_NETWORK_ACCEPT = 3,
};

/*
 * A TCP socket of the session changing state, with the connection's direction as Teleport writes
 * it: src is the side that sends the SYN, dst the side that receives it, so dst_port is the
 * service's port whichever side is the session's.
 * - connect: a SYN sent from the session. src is the session's address (the port is not chosen yet),
 *   dst the peer it connects to.
 * - listen: a socket of the session entering LISTEN. dst is the address and port it listens on
 *   (port 0: listen() picks one after this point), src the unspecified address (any peer).
 * - accept: a connection to a listener of the session, its handshake complete. src is the peer,
 *   src_port its port, dst the session's address and port.
 * An IPv6 socket whose peer (or, listening, whose own address) is IPv4-mapped (::ffff:a.b.c.d) is
 * IPv4 on the wire and is reported as version 4 with IPv4 addresses, so one rule matches an address
 * however it was reached.
 */
struct esr_network_event {
	struct esr_event_header hdr;
	__u16 version;                /* 4 or 6 */
	__u16 operation;              /* enum esr_network_operation */
	__u16 dst_port;               /* host byte order */
	__u16 src_port;               /* accept only; 0 otherwise */
	__u8 src_addr[16];            /* network byte order; IPv4 in the first 4 bytes */
	__u8 dst_addr[16];
};

/*
 * A path whose read-only opens are not recorded (bpf/disk.bpf.c open_ignored), written as put_file
 * writes a file's path: its components root side last, each NUL-terminated ("/usr/lib/" is
 * "lib\0usr\0"), so that it is compared with the end of the kernel's path as it is.
 */
#define ESR_DISK_IGNORE_PREFIXES 16   /* prefixes at most */
#define ESR_DISK_IGNORE_PREFIX_MAX 128 /* bytes of components at most (the path's length without a trailing "/") */

struct esr_ignore_prefix {
	__u32 len;                    /* bytes of components in use */
	__u32 subtree;                /* 1: what lies below that directory (a trailing "/"); 0: that path itself */
	char components[ESR_DISK_IGNORE_PREFIX_MAX]; /* zero past len; 8-byte aligned, compared a word at a time */
};

/*
 * Set by the recorder before load (its own section, so it sits at offset 0 of a map the recorder
 * can find); the verifier sees them as constants and drops the branches not taken.
 */
struct esr_load_config {
	/*
	 * Bit L set: a session's cgroup may sit at depth L below the cgroup2 root: esr's own slices
	 * (<cgroup_path>/<root_path>/<sid>, depth 2 by default), systemd scopes of `esr record`
	 * (/esr.slice/esr-<sid>.scope) and logind's session scopes of SSH logins
	 * (/user.slice/user-UID.slice/session-N.scope, depth 3). The ancestor at such a depth is the
	 * session, whatever child cgroup a process of the session has moved itself into. Each bit costs
	 * every process of the host one ancestor read and one map lookup per hook.
	 */
	__u32 session_levels;
	/*
	 * 1: tracing programs may call bpf_get_current_ancestor_cgroup_id (Linux 5.14 on); the
	 * recorder probes the kernel for it. 0: the ancestor is read from the task's cgroup instead.
	 */
	__u32 ancestor_helper;
	/* Entries of disk_ignore in use (esr.disk_filter.ignore_path_prefixes); 0: every open is recorded. */
	__u32 disk_ignore_count;
	__u32 _pad;
	struct esr_ignore_prefix disk_ignore[ESR_DISK_IGNORE_PREFIXES];
};

/*
 * Every type of the boundary in one struct, so that its BTF carries them all (a type used only on a
 * program's stack, or an enum used only for its values, would not be emitted): bpf/layout.c defines
 * one, for the build's layout generator; no program uses it.
 */
struct esr_boundary {
	enum esr_kind kind;
	enum esr_exec_flag exec_flag;
	enum esr_open_flag open_flag;
	enum esr_network_operation network_operation;
	enum esr_file_flag file_flag;
	struct esr_file file;
	struct esr_session session;
	struct esr_load_config load_config;
	struct esr_event_header header;
	struct esr_exec_event exec;
	struct esr_open_event open;
	struct esr_network_event network;
};

#ifndef ESR_USER_SIDE_ONLY

const volatile struct esr_load_config load_config SEC(".rodata.esr") __weak = { .session_levels = 1u << 2, .ancestor_helper = 1 };

/*
 * A chain of field reads from `src`: plain loads when `typed` (src is a BTF pointer the verifier
 * knows: a tp_btf argument, bpf_get_current_task_btf(), or a pointer loaded from one), else one
 * bpf_probe_read_kernel per link, which works from any pointer. A helper call costs ≈ 25 ns on this
 * project's VMs, a load ≈ 1 ns; callers pass a constant, so only one of the two is compiled.
 */
#define ESR_READ(typed, src, ...) ((typed) ? ___arrow(src, ##__VA_ARGS__) : BPF_CORE_READ(src, ##__VA_ARGS__))

/*
 * How a program reads the kernel's objects, from the slowest (every kernel) to the cheapest; each
 * program that has twins is built once per way, and the recorder loads the cheapest the kernel
 * allows (lib/kernel/program-set.ts).
 * - ESR_READS_HELPER: every field with bpf_probe_read_kernel (see ESR_READ);
 * - ESR_READS_TASK: the current task through bpf_get_current_task_btf (Linux 5.11 on), so its
 *   descriptor table, mount namespace and ABI are plain loads; a file and its path, reached
 *   through a descriptor table slot (an array of pointers, which BTF does not type) or through
 *   container_of(), with helpers;
 * - ESR_READS_CAST: the file and every dentry and mount of its path as well, made BTF pointers
 *   with the bpf_rdonly_cast kfunc (Linux 6.2 on): the walk is plain loads but for the names.
 */
enum esr_reads { ESR_READS_HELPER, ESR_READS_TASK, ESR_READS_CAST };

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* `ptr` as a read-only BTF pointer to `type` (ESR_READS_CAST only). */
#define ESR_CAST(ptr, type) ((type *)bpf_rdonly_cast((const void *)(ptr), bpf_core_type_id_kernel(type)))

/* Depths a session cgroup may have: bits 0 to ESR_SESSION_LEVELS - 1 of session_levels. */
#define ESR_SESSION_LEVELS 16

/*
 * Shared by the programs of every event kind. Each kind's object defines it (weak), and the build
 * links the objects into one (bpftool gen object), where the definitions become one map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct esr_session);
} sessions SEC(".maps") __weak;

/*
 * How many sessions record each kind (key: enum esr_kind), kept by the recorder beside `sessions`:
 * a hook of a kind no session records returns before any cgroup read or hash lookup, so the
 * processes of a host whose recorder has no session (a daemon between logins) pay one array read.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ESR_KIND_COUNT);
	__type(key, __u32);
	__type(value, __u32);
} recording SEC(".maps") __weak;

char LICENSE[] SEC("license") __weak = "GPL";

/* The two layouts of a cgroup's ancestors: ids up to Linux 5.19, pointers from 6.0 on. */
struct cgroup___ids {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

struct cgroup___ptrs {
	int level;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));

/*
 * What bpf_get_current_ancestor_cgroup_id(level) returns for a task in `cgrp` (of depth
 * `cgrp_level`), read where kernels before 5.14 refuse the helper: the id of the default
 * hierarchy's (cgroup2) ancestor of cgrp at `level`, cgrp's own at its own depth, or 0 when cgrp
 * sits higher up.
 */
static __always_inline __u64 ancestor_cgroup_id(struct cgroup *cgrp, int cgrp_level, __u32 level)
{
	struct cgroup *ancestor = 0;
	__u64 id = 0;

	if (!cgrp || cgrp_level < (int)level)
		return 0;
	if (bpf_core_field_exists(struct cgroup___ids, ancestor_ids)) {
		bpf_probe_read_kernel(&id, sizeof(id), (void *)cgrp + bpf_core_field_offset(struct cgroup___ids, ancestor_ids) + level * sizeof(__u64));
		return id;
	}
	bpf_probe_read_kernel(&ancestor, sizeof(ancestor), (void *)cgrp + bpf_core_field_offset(struct cgroup___ptrs, ancestors) + level * sizeof(ancestor));
	return ancestor ? BPF_CORE_READ(ancestor, kn, id) : 0;
}

/*
 * The session of a cgroup, if it records `kind`: its ancestor (or itself) at one of the session
 * levels is a key of `sessions`. The one place that knows the levels; every way of finding a
 * session goes through it. current_task (a constant at every call) means the current task's
 * cgroup, found with bpf_get_current_ancestor_cgroup_id where the kernel allows it (cgrp unused);
 * otherwise `cgrp` is read. The loop is unrolled so that the verifier, which sees load_config as a
 * constant, drops the levels not configured: an outsider pays only for the levels in use.
 */
static __always_inline struct esr_session *session_of(bool current_task, struct cgroup *cgrp, enum esr_kind kind, __u64 *session_id)
{
	int cgrp_level = 0;
	__u32 key = kind;
	__u32 *recorders = bpf_map_lookup_elem(&recording, &key);

	if (!recorders || !*recorders)
		return 0;
	/* load_config is read where it decides, never kept: the verifier must see a constant each time. */
	if (current_task && !load_config.ancestor_helper)
		cgrp = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), cgroups, dfl_cgrp);
	if (!(current_task && load_config.ancestor_helper))
		cgrp_level = cgrp ? BPF_CORE_READ(cgrp, level) : -1;
#pragma unroll
	for (__u32 level = 0; level < ESR_SESSION_LEVELS; level++) {
		__u64 id;
		struct esr_session *s;

		if (!(load_config.session_levels & (1u << level)))
			continue;
		id = current_task && load_config.ancestor_helper ? bpf_get_current_ancestor_cgroup_id(level)
								 : ancestor_cgroup_id(cgrp, cgrp_level, level);
		s = bpf_map_lookup_elem(&sessions, &id);
		if (!s)
			continue;
		if (!(s->kinds & (1u << kind)))
			return 0;
		*session_id = id;
		return s;
	}
	return 0;
}

/* The session of the current task, if it is recording `kind`: the one check every hook does first. */
static __always_inline struct esr_session *current_session(enum esr_kind kind, __u64 *session_id)
{
	return session_of(true, 0, kind, session_id);
}

/*
 * The session of a cgroup, if it is recording `kind`: the check for what happens outside the
 * task it belongs to (a handshake completing in softirq, on whatever task was running), where the
 * kernel object names its own cgroup.
 */
static __always_inline struct esr_session *session_of_cgroup(enum esr_kind kind, struct cgroup *cgrp, __u64 *session_id)
{
	return session_of(false, cgrp, kind, session_id);
}

/* task_struct.sessionid exists only with CONFIG_AUDITSYSCALL: a flavor of our own lets the object load without it. */
struct task_struct___audit {
	unsigned int sessionid;
} __attribute__((preserve_access_index));

/* `typed`: read the task through bpf_get_current_task_btf (see ESR_READ). */
static __always_inline __u32 current_audit_session_id(bool typed)
{
	struct task_struct___audit *task = typed ? (void *)bpf_get_current_task_btf() : (void *)bpf_get_current_task();

	if (!bpf_core_field_exists(task->sessionid))
		return 0;
	return ESR_READ(typed, task, sessionid);
}

/* `reads`: how the program reads the kernel's objects (enum esr_reads). */
static __always_inline void fill_header(struct esr_event_header *h, __u64 session_id, enum esr_reads reads)
{
	h->session_id = session_id;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->audit_session_id = current_audit_session_id(reads >= ESR_READS_TASK);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/*
 * The syscall a sys_exit program sees: its number, whether it came in through the i386 ABI
 * (int 0x80, whose numbers and registers differ), and its first three arguments.
 */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define TS_COMPAT 0x0002  /* thread_info.status: this syscall came in through the i386 ABI */

/* `typed`: read the task through bpf_get_current_task_btf (see ESR_READ). */
static __always_inline bool syscall_is_compat(bool typed)
{
	struct task_struct *task = typed ? bpf_get_current_task_btf() : (struct task_struct *)bpf_get_current_task();

	return ESR_READ(typed, task, thread_info.status) & TS_COMPAT;
}
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(regs) ((regs)->syscallno)

/* 32-bit (AArch32) tasks are not decoded. */
static __always_inline bool syscall_is_compat(bool typed)
{
	return false;
}
#else
#error "esr: unsupported architecture"
#endif

/*
 * A syscall's first three arguments. The sys_exit tracepoint hands its programs the task's saved user
 * registers as a typed (BTF) pointer on every kernel esr supports, so they are plain loads, not
 * helper calls. i386 passes arguments in ebx, ecx, edx, pointers 32 bits wide; arm64 keeps the first
 * in orig_x0 (x0 is the return value by now).
 */
static __always_inline void syscall_args(struct pt_regs *regs, bool compat, __u64 arg[3])
{
#if defined(__TARGET_ARCH_x86)
	if (compat) {
		arg[0] = (__u32)regs->bx;
		arg[1] = (__u32)regs->cx;
		arg[2] = (__u32)regs->dx;
		return;
	}
	arg[0] = regs->di;
	arg[1] = regs->si;
	arg[2] = regs->dx;
#elif defined(__TARGET_ARCH_arm64)
	arg[0] = regs->orig_x0;
	arg[1] = regs->regs[1];
	arg[2] = regs->regs[2];
#endif
}

/* Every event goes out without a wakeup: the recorder drains on a timer, in batches. */
static __always_inline void emit(void *ring, struct esr_session *s, enum esr_kind kind, void *event, __u64 size)
{
	if (bpf_ringbuf_output(ring, event, size, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&s->lost[kind], 1);
}

/*
 * The per-CPU scratch slots (where an event too large for the stack is built) are claimed by one
 * program run at a time. A tp_btf program can be preempted (syscall tracepoints may fault, PREEMPT_RT
 * runs programs preemptible), and the next run on that CPU finds the slot; a test of the flag and a
 * later store would let both use it. Compare-and-swap needs Linux 5.12, so the claim uses atomic
 * adds, which every kernel has: each run counts itself in and owns the slot only if it was alone; one
 * that was not counts itself out, and its event is lost (and counted). Two runs that meet may both
 * lose; they never share.
 */
static __always_inline bool claim_slot(__u32 *claims)
{
	__sync_fetch_and_add(claims, 1);
	if (*(volatile __u32 *)claims == 1)
		return true;
	__sync_fetch_and_add(claims, -1);
	return false;
}

static __always_inline void release_slot(__u32 *claims)
{
	__sync_fetch_and_add(claims, -1);
}


/* A dentry's parent and name pointer, next to each other in struct dentry on every kernel: one read. */
struct esr_dentry_link {
	struct dentry *parent;
	__u64 hash_len;
	const unsigned char *name;
};

/* `typed`: d is a BTF pointer (see ESR_READ), so its fields are plain loads. */
static __always_inline int read_dentry_link(struct esr_dentry_link *link, struct dentry *d, bool typed)
{
	__u64 parent_at = bpf_core_field_offset(struct dentry, d_parent);

	if (typed) {
		link->parent = d->d_parent;
		link->name = d->d_name.name;
		return 0;
	}
	if (bpf_core_field_offset(struct dentry, d_name.name) == parent_at + __builtin_offsetof(struct esr_dentry_link, name))
		return bpf_probe_read_kernel(link, sizeof(*link), (void *)d + parent_at);
	link->parent = BPF_CORE_READ(d, d_parent);
	link->name = BPF_CORE_READ(d, d_name.name);
	return 0;
}


/*
 * The file a struct file is, for exec and disk events alike: its device, inode, filesystem and
 * path, the path as prepend_path() builds it for /proc/PID/fd/N but leaf first, as NUL-terminated
 * names: each dentry up to the root of its mount, then on from the mount point in the parent
 * mount, until the root of the task's mount namespace (not the task's root: a chroot does not
 * shorten it). A mount not in that namespace (a detached open_tree(2) clone, a mount of another
 * namespace reached through /proc/PID/root) is left by its dentries up to its filesystem's root
 * instead, and marked. A pseudo file (a memfd, a pipe) is its own root: just its name.
 *
 * Bound: ESR_FILE_WALK_STEPS steps (a component or a mount crossing each) and ESR_FILE_PATH_MAX
 * bytes; a longer path is cut, root side missing, and marked ESR_FILE_TRUNCATED.
 * `area` must have ESR_FILE_PATH_MAX + ESR_NAME_MAX_Z bytes of room. The write position lives in
 * `out`, not in a register: a value loaded from memory is one the verifier does not track, so the
 * states of every iteration look alike and the walk stays cheap to verify.
 *
 * `reads` (a constant at each call, see enum esr_reads): how task and file are read. The exec'd
 * file is a tp_btf argument and could be typed, but that saves ≈ 0.25 µs per exec and costs
 * ≈ 15 ms more verification at every start: exec events read it with helpers.
 */
#define ESR_NAME_MAX_Z 256 /* a dentry name (NAME_MAX 255) and its NUL */

static __always_inline void put_file(struct esr_file *out, char *area, struct file *file, struct task_struct *task, enum esr_reads reads)
{
	bool typed = reads == ESR_READS_CAST;
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct esr_dentry_link link;
	bool done = false;

	if (typed)
		file = ESR_CAST(file, struct file);

	struct dentry *d = ESR_READ(typed, file, f_path.dentry);
	struct vfsmount *vfsmnt = ESR_READ(typed, file, f_path.mnt);
	struct mount *mnt = typed ? ESR_CAST((void *)vfsmnt - mnt_off, struct mount) : (struct mount *)((void *)vfsmnt - mnt_off);
	struct dentry *mnt_root = ESR_READ(typed, vfsmnt, mnt_root);
	struct mount *ns_root = ESR_READ(reads >= ESR_READS_TASK, task, nsproxy, mnt_ns, root);
	struct inode *inode = ESR_READ(typed, file, f_inode);
	struct super_block *sb = ESR_READ(typed, inode, i_sb);

	out->path_len = 0;
	out->flags = 0;
	out->ino = ESR_READ(typed, inode, i_ino);
	out->dev = ESR_READ(typed, sb, s_dev);
	if (bpf_probe_read_kernel_str(out->fs_type, sizeof(out->fs_type), ESR_READ(typed, sb, s_type, name)) <= 0)
		out->fs_type[0] = 0;
	if (!d || !vfsmnt) {
		out->flags |= ESR_FILE_TRUNCATED;
		return;
	}
	if (ESR_READ(typed, inode, i_nlink) == 0)
		out->flags |= ESR_FILE_DELETED;
	for (int i = 0; i < ESR_FILE_WALK_STEPS; i++) {
		if (read_dentry_link(&link, d, typed))
			break;
		if (!(out->flags & ESR_FILE_OUTSIDE_NAMESPACE) && d == mnt_root) {
			struct mount *up = ESR_READ(typed, mnt, mnt_parent);

			if (up && up != mnt) {
				d = ESR_READ(typed, mnt, mnt_mountpoint);
				mnt = up;
				vfsmnt = typed ? &up->mnt : (struct vfsmount *)((void *)up + mnt_off);
				mnt_root = ESR_READ(typed, vfsmnt, mnt_root);
				continue;
			}
			if (mnt == ns_root) {
				done = true;
				break;
			}
			out->flags |= ESR_FILE_OUTSIDE_NAMESPACE;
		}
		if (d == link.parent && (out->flags & ESR_FILE_OUTSIDE_NAMESPACE)) {  /* its filesystem's root */
			done = true;
			break;
		}
		__u32 len = out->path_len;

		if (len >= ESR_FILE_PATH_MAX - ESR_NAME_MAX_Z)  /* so path_len < ESR_FILE_PATH_MAX */
			break;
		barrier_var(len);
		len &= ESR_FILE_PATH_MAX - 1;  /* a no-op the verifier can follow */
		long n = bpf_probe_read_kernel_str(&area[len], ESR_NAME_MAX_Z, link.name);
		if (n <= 0)
			break;
		out->path_len = len + n;
		if (d == link.parent) {  /* a pseudo or disconnected dentry: nothing above it */
			if (ESR_READ(typed, d, d_op, d_dname))
				out->flags |= ESR_FILE_ANONYMOUS;
			done = true;
			break;
		}
		d = link.parent;
	}
	if (!done)
		out->flags |= ESR_FILE_TRUNCATED;
}

#endif /* ESR_USER_SIDE_ONLY */
#endif /* ESR_H */
