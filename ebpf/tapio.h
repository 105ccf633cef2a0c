/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The wire format between tapio's eBPF probes and the recorder: records written to the `events`
 * ring buffer, and the key/value of the `retransmits` map. The Rust side mirrors these structs in
 * src/lib/source/kernel/wire.rs; both sides check the sizes below.
 */
#ifndef TAPIO_H
#define TAPIO_H

#define TAPIO_COMM_LEN 16
#define TAPIO_FILENAME_LEN 256
/* Cgroup path components sent with an OOM kill, from the victim's cgroup upwards. */
#define TAPIO_CGROUP_DEPTH 8
#define TAPIO_CGROUP_NAME_LEN 128

enum tapio_kind {
	TAPIO_EXEC = 1,
	TAPIO_EXIT = 2,
	TAPIO_SIGNAL = 3,
	TAPIO_OOM = 4,
	TAPIO_TCP = 5,
};

/* Every record starts with this header: who (the current task) and when. */
struct tapio_hdr {
	__u64 ts;                   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup;               /* kernfs id of the task's memory cgroup; 0 when unknown */
	__u32 pid;                  /* thread group id */
	__u32 kind;                 /* enum tapio_kind */
	char comm[TAPIO_COMM_LEN];
};

struct tapio_exec {
	struct tapio_hdr hdr;
	__u32 ppid;
	__u32 _pad;
	char filename[TAPIO_FILENAME_LEN];
};

struct tapio_exit {
	struct tapio_hdr hdr;
	__s32 exit_code;            /* task->exit_code: (status << 8) | signal | 0x80 core */
	__u32 _pad;
};

struct tapio_signal {
	struct tapio_hdr hdr;       /* the sender */
	__u32 target_pid;           /* thread group id of the target */
	__s32 sig;
	__s32 result;               /* TRACE_SIGNAL_DELIVERED, _IGNORED, … */
	__s32 code;                 /* si_code: SI_USER, SI_KERNEL, … */
	__u64 target_cgroup;
	char target_comm[TAPIO_COMM_LEN];
};

struct tapio_oom {
	struct tapio_hdr hdr;       /* the killer: the task whose allocation failed */
	__u32 victim_pid;
	__u32 depth;                /* path components in `path` */
	__u64 victim_cgroup;
	char victim_comm[TAPIO_COMM_LEN];
	__u64 total_vm;             /* pages */
	__u64 anon_rss;
	__u64 file_rss;
	__u64 shmem_rss;
	__u64 memcg_usage;          /* pages, of the cgroup whose limit was hit */
	__u64 memcg_limit;
	__s32 oom_level;            /* index in `path` of that cgroup; -1: no limit was hit */
	__u32 page_size;
	char path[TAPIO_CGROUP_DEPTH][TAPIO_CGROUP_NAME_LEN]; /* [0] is the victim's own cgroup */
};

struct tapio_tcp {
	struct tapio_hdr hdr;       /* the socket's owner when known (pid 0 otherwise) */
	__u16 family;               /* AF_INET, AF_INET6 */
	__u16 sport;
	__u16 dport;
	__u8 oldstate;
	__u8 newstate;
	__u8 rst;                   /* a reset was received on this socket */
	__u8 _pad[7];
	__u8 saddr[16];
	__u8 daddr[16];
};

struct tapio_retrans_key {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct tapio_retrans_val {
	__u64 first;                /* CLOCK_MONOTONIC of the first retransmit counted */
	__u64 last;
	__u32 count;
	__u32 state;
};

#define TAPIO_CHECK_SIZE(t, n) _Static_assert(sizeof(struct t) == (n), #t " changed: update wire.rs")
TAPIO_CHECK_SIZE(tapio_hdr, 40);
TAPIO_CHECK_SIZE(tapio_exec, 304);
TAPIO_CHECK_SIZE(tapio_exit, 48);
TAPIO_CHECK_SIZE(tapio_signal, 80);
TAPIO_CHECK_SIZE(tapio_oom, 1152);
TAPIO_CHECK_SIZE(tapio_tcp, 88);
TAPIO_CHECK_SIZE(tapio_retrans_key, 40);
TAPIO_CHECK_SIZE(tapio_retrans_val, 24);

#endif
