// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel-matrix checks need and busybox cannot do, built static so it runs in the
 * initramfs and on the host alike:
 *   helper fexecve FILE ARG0 [ARG...]   copy FILE into a memfd and execute that (fexecve)
 *   helper connect ADDR PORT            one TCP connect (IPv4 or IPv6); refused is fine, the SYN went out
 *   helper opens N PATH                 N opens of PATH as fast as possible (overflows the disk ring)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: helper fexecve FILE ARG0 [ARG...] | connect ADDR PORT | opens N PATH\n");
	return 2;
}

static int run_fexecve(char **argv)
{
	int src = open(argv[2], O_RDONLY | O_CLOEXEC);
	int mem = memfd_create("esr-matrix", MFD_CLOEXEC);
	struct stat st;

	if (src < 0 || fstat(src, &st) < 0) {
		perror(argv[2]);
		return 1;
	}
	if (mem < 0) {
		perror("helper fexecve: memfd_create");
		return 1;
	}
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = sendfile(mem, src, &done, st.st_size - done);
		if (n <= 0) {
			perror("helper fexecve: copy");
			return 1;
		}
	}
	extern char **environ;
	char proc_path[64];

	fexecve(mem, &argv[3], environ);
	/*
	 * Debian 11's 5.10.223 fails execveat(fd, "", AT_EMPTY_PATH) of a memfd with ENOENT (seen;
	 * that attempt is recorded as a failed exec); the fd's /proc path runs the same memfd.
	 */
	if (errno == ENOENT) {
		snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", mem);
		execve(proc_path, &argv[3], environ);
	}
	perror("helper fexecve");
	return 1;
}

static int run_connect(const char *addr, const char *port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(port)) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
	int v6 = strchr(addr, ':') != NULL;
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(v6 ? AF_INET6 : AF_INET, addr, v6 ? (void *)&a6.sin6_addr : (void *)&a4.sin_addr) != 1) {
		fprintf(stderr, "helper connect: bad address %s\n", addr);
		return 1;
	}
	if (connect(fd, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, v6 ? sizeof(a6) : sizeof(a4)) < 0)
		perror("helper connect");
	return 0;
}

static int run_opens(long n, const char *path)
{
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "fexecve"))
		return run_fexecve(argv);
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return run_connect(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "opens"))
		return run_opens(atol(argv[2]), argv[3]);
	return usage();
}
