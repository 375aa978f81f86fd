// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel-matrix checks need and busybox cannot do, built static so it runs in the
 * initramfs and on the host alike:
 *   helper fexecve FILE ARG0 [ARG...]   copy FILE into a memfd and execute that (fexecve)
 *   helper connect ADDR PORT            one TCP connect (IPv4 or IPv6); refused is fine, the SYN went out
 *   helper opens N PATH                 N opens of PATH as fast as possible (overflows the disk ring)
 *   helper serve ADDR PORT              a bind shell: listen, accept one connection, write "hi", read the answer
 *   helper talk ADDR PORT               its client: connect (retrying until the listener is up), read,
 *                                       answer; prints its own port
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
	fprintf(stderr, "usage: helper fexecve FILE ARG0 [ARG...] | connect ADDR PORT | opens N PATH | serve ADDR PORT | talk ADDR PORT\n");
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

/* A TCP socket of ADDR's family, and ADDR:PORT in `addr`; -1 for a bad address. */
static int tcp_socket(const char *addr, const char *port, struct sockaddr_storage *sa, socklen_t *len)
{
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	int v6 = strchr(addr, ':') != NULL;

	memset(sa, 0, sizeof(*sa));
	if (v6) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(atoi(port));
		*len = sizeof(*a6);
	} else {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(atoi(port));
		*len = sizeof(*a4);
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, v6 ? (void *)&a6->sin6_addr : (void *)&a4->sin_addr) != 1) {
		fprintf(stderr, "helper: bad address %s\n", addr);
		return -1;
	}
	return socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
}

static int run_connect(const char *addr, const char *port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd = tcp_socket(addr, port, &sa, &len);

	if (fd < 0)
		return 1;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		perror("helper connect");
	return 0;
}

static int run_serve(const char *addr, const char *port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int one = 1, fd = tcp_socket(addr, port, &sa, &len), conn;
	char answer[16];

	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 1) < 0 || (conn = accept(fd, NULL, NULL)) < 0) {
		perror("helper serve");
		return 1;
	}
	if (write(conn, "hi\n", 3) != 3 || read(conn, answer, sizeof(answer)) <= 0) {
		perror("helper serve: talk");
		return 1;
	}
	return 0;
}

static int run_talk(const char *addr, const char *port)
{
	struct sockaddr_storage sa, local;
	socklen_t len, local_len = sizeof(local);
	char greeting[16];
	int fd = -1;

	/* Up to a minute: the listener starts in a session that boots under software emulation. */
	for (int tries = 0; tries < 600; tries++) {
		if ((fd = tcp_socket(addr, port, &sa, &len)) < 0)
			return 1;
		if (connect(fd, (struct sockaddr *)&sa, len) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(100000);
	}
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&local, &local_len) < 0 || read(fd, greeting, sizeof(greeting)) <= 0 ||
	    write(fd, "x", 1) != 1) {
		perror("helper talk");
		return 1;
	}
	printf("%d\n", ntohs(((struct sockaddr_in *)&local)->sin_port));  /* sin6_port is at the same offset */
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
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return run_serve(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "talk"))
		return run_talk(argv[2], argv[3]);
	return usage();
}
