/*
 * Linked into libesrbpf.so (and not exported from it) so that libbpf, libelf and zlib, compiled
 * against the build host's glibc headers, import nothing newer than GLIBC_2.17: the headers of a
 * current glibc turn these calls into symbols that old hosts do not have.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define GLIBC_BASE "GLIBC_2.17"
#else
#error "libesrbpf is built for x86_64 and aarch64 only"
#endif

/* fstat became a real libc symbol in 2.33 (before, an inline over __fxstat); glibc's struct stat
 * is the kernel's on both architectures, so the system call fills it directly. */
int fstat(int fd, struct stat *st) { return syscall(SYS_fstat, fd, st); }

/* _FILE_OFFSET_BITS=64 (elfutils' configure) maps fcntl to fcntl64, new in 2.28; on 64-bit
 * targets both take the same arguments, and every fcntl argument fits in a long. */
int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

/* 2.22 gave fmemopen a new version; libbpf reads an in-memory Kconfig with it (which esr does not
 * use), and the first version does that just as well. */
FILE *esr_fmemopen_base(void *buf, size_t size, const char *mode);
__asm__(".symver esr_fmemopen_base, fmemopen@" GLIBC_BASE);
FILE *fmemopen(void *buf, size_t size, const char *mode) { return esr_fmemopen_base(buf, size, mode); }
