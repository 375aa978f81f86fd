// Benchmark workloads with their own timing, so a run measures the work and not how it was started.
//   workload exec N          fork + execve("/bin/true", 3 args) + wait, N times
//   workload open N FILE     open + close of a (cached) file, N times
//   workload connect N       TCP connect to a loopback listener + accept + close, N times
//   workload getppid N       the cheapest syscall, N times (cost of syscall hooks for everyone)
//   workload openrate N RATE open + close paced at RATE per second (for the loss point)
// Prints: <operations> <seconds> <ns per operation> <own CPU seconds>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void run_exec(long n)
{
	char *argv[] = {"/bin/true", "alpha", "beta", "gamma", NULL};
	char *envp[] = {NULL};
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execve(argv[0], argv, envp);
			_exit(127);
		}
		int status;
		waitpid(pid, &status, 0);
	}
}

static void run_open(long n, const char *path, double rate)
{
	double start = now();
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die("open");
		close(fd);
		if (rate > 0 && (i & 63) == 63)
			while (now() - start < (i + 1) / rate)
				;
	}
}

static void run_connect(long n)
{
	int srv = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (srv < 0 || bind(srv, (struct sockaddr *)&addr, sizeof(addr)) || listen(srv, 128) || getsockname(srv, (struct sockaddr *)&addr, &len))
		die("listen");
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)))
			die("connect");
		int a = accept(srv, NULL, NULL);
		if (a < 0)
			die("accept");
		close(c);
		close(a);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return fprintf(stderr, "usage: workload exec|open|connect|getppid|openrate N [FILE] [RATE]\n"), 2;
	long n = atol(argv[2]);
	double t0 = now();
	if (!strcmp(argv[1], "exec"))
		run_exec(n);
	else if (!strcmp(argv[1], "open"))
		run_open(n, argc > 3 ? argv[3] : "/etc/hostname", 0);
	else if (!strcmp(argv[1], "openrate"))
		run_open(n, "/etc/hostname", argc > 3 ? atof(argv[3]) : 0);
	else if (!strcmp(argv[1], "connect"))
		run_connect(n);
	else if (!strcmp(argv[1], "getppid"))
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	else
		return fprintf(stderr, "unknown workload %s\n", argv[1]), 2;
	double secs = now() - t0;
	struct rusage self, children;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec + children.ru_utime.tv_sec + children.ru_stime.tv_sec +
		     (self.ru_utime.tv_usec + self.ru_stime.tv_usec + children.ru_utime.tv_usec + children.ru_stime.tv_usec) / 1e6;
	printf("%ld %.6f %.1f %.6f\n", n, secs, secs * 1e9 / n, cpu);
	return 0;
}
