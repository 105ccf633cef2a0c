/*
 * A steady kernel event load for scripts/bench-record.sh: SIGTERM, at RATE per second for SECONDS,
 * to a child that ignores it. Each kill(2) is one signal_generate event, cheap enough to reach
 * hundreds of thousands a second on one core. Prints how many were sent.
 *   cc -O2 -o sigload scripts/sigload.c && ./sigload 200000 5
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sigload RATE SECONDS\n");
		return 2;
	}
	long rate = atol(argv[1]);
	double secs = atof(argv[2]);
	pid_t child = fork();
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		for (;;)
			pause();
	}
	usleep(100000);
	double t0 = now();
	long sent = 0;
	for (;;) {
		double el = now() - t0;
		if (el >= secs)
			break;
		long due = (long)(el * rate);
		while (sent < due) {
			kill(child, SIGTERM);
			sent++;
		}
		struct timespec pause_ns = {0, 200000};
		nanosleep(&pause_ns, NULL);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	printf("%ld %.3f\n", sent, now() - t0);
	return 0;
}
