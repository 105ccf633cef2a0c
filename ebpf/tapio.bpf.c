// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tapio's kernel probes: tracepoints only (no kprobes), CO-RE, one ring buffer.
 *
 *   sched/sched_process_exec     process started
 *   sched/sched_process_exit     process ended, with its exit code or signal
 *   tp_btf/signal_generate       a fatal signal was generated (sender and target)
 *   tp_btf/mark_victim           the OOM killer chose a victim (the victim's memory cgroup)
 *   sock/inet_sock_set_state     TCP connected / refused / timed out / reset / closed
 *   tcp/tcp_receive_reset        marks a socket as reset by its peer
 *   tcp/tcp_retransmit_skb       counted per connection in a map; the recorder sweeps it
 *
 * Build: ebpf/build.sh (clang -O2 -g -target bpf). The object is kept in the repository.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "tapio.h"

/* The kernel types read with CO-RE: only the fields used, relocated against the running kernel. */
struct kernfs_node {
	struct kernfs_node *parent;
	const char *name;
	__u64 id;
} __attribute__((preserve_access_index));

/* Since 6.15 the parent pointer is RCU-protected and called __parent. */
struct kernfs_node___new {
	struct kernfs_node *__parent;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup_subsys_state *subsys[16];
} __attribute__((preserve_access_index));

enum cgroup_subsys_id {
	memory_cgrp_id = 4,
};

struct page_counter {
	struct {
		long counter;
	} usage;
	unsigned long max;
} __attribute__((preserve_access_index));

struct mem_cgroup {
	struct cgroup_subsys_state css;
	struct page_counter memory;
} __attribute__((preserve_access_index));

struct percpu_counter {
	__s64 count;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long total_vm;
	struct percpu_counter rss_stat[4];
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	char comm[16];
	struct task_struct *real_parent;
	struct css_set *cgroups;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct trace_event_raw_sched_process_exec {
	__u64 common;
	__u32 __data_loc_filename;
	int pid;
	int old_pid;
} __attribute__((preserve_access_index));

struct trace_event_raw_inet_sock_set_state {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

/* tcp_retransmit_skb has its own event class since 6.x; before, it shared tcp_event_sk_skb. */
struct trace_event_raw_tcp_retransmit_skb {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk {
	__u64 common;
	const void *skaddr;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define MM_FILEPAGES 0
#define MM_ANONPAGES 1
#define MM_SHMEMPAGES 3
/* A memory cgroup counts as "at its limit" within this many pages (a huge page's worth, twice). */
#define LIMIT_SLACK_PAGES 1024
#define NO_LIMIT_PAGES (1UL << 50)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The page size of the running kernel, set by the loader. */
const volatile __u32 page_size = 4096;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader */
} events SEC(".maps");

/* Records that found the ring buffer full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct owner {
	__u64 cgroup;
	__u32 pid;
	__u32 _pad;
	char comm[TAPIO_COMM_LEN];
};

/* Who called connect() on a socket: the answer (reset, timeout) arrives in softirq context. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

/* Sockets that received a reset, until they reach CLOSE. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} resets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tapio_retrans_key);
	__type(value, struct tapio_retrans_val);
} retransmits SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

static __always_inline void *reserve(__u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		count_drop();
	return r;
}

static __always_inline struct cgroup_subsys_state *memory_css(struct task_struct *task)
{
	struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = 0;
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (!cgroups || id < 0 || id >= 16)
		return 0;
	bpf_core_read(&css, sizeof(css), &cgroups->subsys[id]);
	return css;
}

static __always_inline struct kernfs_node *css_kn(struct cgroup_subsys_state *css)
{
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn);
}

static __always_inline __u64 task_memcg_id(struct task_struct *task)
{
	struct kernfs_node *kn = css_kn(memory_css(task));
	return kn ? BPF_CORE_READ(kn, id) : 0;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node___new, __parent)) {
		struct kernfs_node___new *n = (void *)kn;
		return BPF_CORE_READ(n, __parent);
	}
	return BPF_CORE_READ(kn, parent);
}

static __always_inline void fill_hdr(struct tapio_hdr *h, __u32 kind)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	h->ts = bpf_ktime_get_ns();
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->kind = kind;
	h->cgroup = task_memcg_id(task);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

SEC("tracepoint/sched/sched_process_exec")
int tapio_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct tapio_exec *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->hdr, TAPIO_EXEC);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->_pad = 0;
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_filename);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + (loc & 0xffff));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tapio_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	/* One record per process: the thread group leader's exit. */
	if ((__u32)id != (__u32)(id >> 32))
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	struct tapio_exit *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->hdr, TAPIO_EXIT);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int fatal(int sig)
{
	switch (sig) {
	case 2:  /* SIGINT */
	case 3:  /* SIGQUIT */
	case 4:  /* SIGILL */
	case 6:  /* SIGABRT */
	case 7:  /* SIGBUS */
	case 8:  /* SIGFPE */
	case 9:  /* SIGKILL */
	case 11: /* SIGSEGV */
	case 15: /* SIGTERM */
		return 1;
	}
	return 0;
}

struct kernel_siginfo {
	struct {
		int si_signo;
		int si_errno;
		int si_code;
	};
} __attribute__((preserve_access_index));

SEC("tp_btf/signal_generate")
int BPF_PROG(tapio_signal, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	if (!fatal(sig))
		return 0;
	struct tapio_signal *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->hdr, TAPIO_SIGNAL);
	e->target_pid = BPF_CORE_READ(task, tgid);
	e->sig = sig;
	e->result = result;
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers. */
	e->code = (unsigned long)info > 1 ? BPF_CORE_READ(info, si_code) : 0;
	e->target_cgroup = task_memcg_id(task);
	BPF_CORE_READ_STR_INTO(&e->target_comm, task, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(tapio_oom, struct task_struct *task, unsigned int uid)
{
	struct tapio_oom *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->hdr, TAPIO_OOM);
	e->victim_pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&e->victim_comm, task, comm);
	e->page_size = page_size;

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	e->total_vm = mm ? BPF_CORE_READ(mm, total_vm) : 0;
	e->file_rss = mm ? BPF_CORE_READ(mm, rss_stat[MM_FILEPAGES].count) : 0;
	e->anon_rss = mm ? BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count) : 0;
	e->shmem_rss = mm ? BPF_CORE_READ(mm, rss_stat[MM_SHMEMPAGES].count) : 0;

	/* The victim's memory cgroup, read from the victim: this runs in the killer's context. */
	struct cgroup_subsys_state *css = memory_css(task);
	struct kernfs_node *kn = css_kn(css);
	e->victim_cgroup = kn ? BPF_CORE_READ(kn, id) : 0;
	e->depth = 0;
	e->oom_level = -1;
	e->memcg_usage = 0;
	e->memcg_limit = 0;

	/* The nearest cgroup at its limit is the one whose limit was hit (CONSTRAINT_MEMCG). */
	for (int i = 0; i < TAPIO_CGROUP_DEPTH; i++) {
		if (!css)
			break;
		struct mem_cgroup *memcg = (void *)css; /* css is mem_cgroup's first member */
		unsigned long max = BPF_CORE_READ(memcg, memory.max);
		long usage = BPF_CORE_READ(memcg, memory.usage.counter);
		if (max < NO_LIMIT_PAGES && usage + LIMIT_SLACK_PAGES >= (long)max) {
			e->oom_level = i;
			e->memcg_usage = usage;
			e->memcg_limit = max;
			break;
		}
		css = BPF_CORE_READ(css, parent);
	}

	/* The path, component by component, upwards; the root's own name is not part of it. */
	for (int i = 0; i < TAPIO_CGROUP_DEPTH; i++) {
		if (!kn)
			break;
		struct kernfs_node *parent = kn_parent(kn);
		if (!parent)
			break;
		const char *name = BPF_CORE_READ(kn, name);
		bpf_probe_read_kernel_str(e->path[i], TAPIO_CGROUP_NAME_LEN, name);
		e->depth = i + 1;
		kn = parent;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tapio_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	__u64 sk = (__u64)BPF_CORE_READ(ctx, skaddr);
	__u8 one = 1;
	bpf_map_update_elem(&resets, &sk, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tapio_tcp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP)
		return 0;
	int oldstate = BPF_CORE_READ(ctx, oldstate);
	int newstate = BPF_CORE_READ(ctx, newstate);
	__u64 sk = (__u64)BPF_CORE_READ(ctx, skaddr);

	if (newstate == TCP_SYN_SENT) {
		/* connect(): process context, the caller owns the socket. */
		struct task_struct *task = (void *)bpf_get_current_task();
		struct owner o = {};
		o.pid = bpf_get_current_pid_tgid() >> 32;
		o.cgroup = task_memcg_id(task);
		bpf_get_current_comm(o.comm, sizeof(o.comm));
		bpf_map_update_elem(&owners, &sk, &o, BPF_ANY);
		return 0;
	}
	/* Recorded: the outcome of a connect(), and the end of a connection. */
	if (!(oldstate == TCP_SYN_SENT || newstate == TCP_CLOSE))
		return 0;

	struct tapio_tcp *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.ts = bpf_ktime_get_ns();
	e->hdr.kind = TAPIO_TCP;
	struct owner *o = bpf_map_lookup_elem(&owners, &sk);
	if (o) {
		e->hdr.pid = o->pid;
		e->hdr.cgroup = o->cgroup;
		__builtin_memcpy(e->hdr.comm, o->comm, sizeof(e->hdr.comm));
	}
	__u8 *rst = bpf_map_lookup_elem(&resets, &sk);
	e->rst = rst ? 1 : 0;
	if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&owners, &sk);
		if (rst)
			bpf_map_delete_elem(&resets, &sk);
	}
	e->family = BPF_CORE_READ(ctx, family);
	e->sport = BPF_CORE_READ(ctx, sport);
	e->dport = BPF_CORE_READ(ctx, dport);
	e->oldstate = oldstate;
	e->newstate = newstate;
	if (e->family == AF_INET) {
		bpf_core_read(e->saddr, 4, &ctx->saddr);
		bpf_core_read(e->daddr, 4, &ctx->daddr);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, ctx, saddr_v6);
		BPF_CORE_READ_INTO(&e->daddr, ctx, daddr_v6);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

#define RETRANS_KEY(ctx, k, state)                                          \
	do {                                                                 \
		(k).family = BPF_CORE_READ(ctx, family);                     \
		(k).sport = BPF_CORE_READ(ctx, sport);                       \
		(k).dport = BPF_CORE_READ(ctx, dport);                       \
		if ((k).family == AF_INET) {                                 \
			bpf_core_read((k).saddr, 4, &(ctx)->saddr);          \
			bpf_core_read((k).daddr, 4, &(ctx)->daddr);          \
		} else {                                                     \
			BPF_CORE_READ_INTO(&(k).saddr, ctx, saddr_v6);       \
			BPF_CORE_READ_INTO(&(k).daddr, ctx, daddr_v6);       \
		}                                                            \
		state = BPF_CORE_READ(ctx, state);                           \
	} while (0)

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tapio_retransmit(void *raw)
{
	struct tapio_retrans_key k = {};
	__u32 state = 0;
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb)) {
		struct trace_event_raw_tcp_retransmit_skb *ctx = raw;
		RETRANS_KEY(ctx, k, state);
	} else {
		struct trace_event_raw_tcp_event_sk_skb *ctx = raw;
		RETRANS_KEY(ctx, k, state);
	}
	__u64 now = bpf_ktime_get_ns();
	struct tapio_retrans_val *v = bpf_map_lookup_elem(&retransmits, &k);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		v->last = now;
		v->state = state;
		return 0;
	}
	struct tapio_retrans_val nv = {};
	nv.first = now;
	nv.last = now;
	nv.count = 1;
	nv.state = state;
	bpf_map_update_elem(&retransmits, &k, &nv, BPF_NOEXIST);
	return 0;
}
