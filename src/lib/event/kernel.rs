//! Kernel events: what the eBPF probes (or a kernel log) saw.
//!
//! These are the high-rate events of a capture, so they stay small and fixed-shape: integers,
//! short names, and a cgroup path that the block compressor folds away when it repeats.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Name;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    Exec(Exec),
    Exit(Exit),
    Signal(SignalSent),
    /// Boxed: the largest and the rarest record, it would double every event's size.
    OomKill(Box<OomKill>),
    TcpState(TcpStateChange),
    TcpRetransmit(TcpRetransmit),
    // New variants go last: a capture stores the variant's index.
    Task(Task),
    Pressure(MemoryPressure),
    CpuThrottle(CpuThrottle),
}

/// CPU throttling of a cgroup (its `cpu.stat`) since the previous sample: the CFS quota ran out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuThrottle {
    /// The cgroup path, relative to the cpu controller's root.
    pub cgroup: Name,
    /// Enforcement periods that elapsed, and those in which the quota ran out.
    pub periods: u64,
    pub throttled_periods: u64,
    /// Time its tasks waited for the next period, in microseconds.
    pub throttled_us: u64,
    /// The time since the previous sample, in milliseconds.
    pub interval_ms: u32,
}

/// A process the recorder met before (or without) seeing its exec: its name and cgroup, written
/// once before the first event that names it by pid, so that the event reaches its container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub pid: u32,
    pub comm: Name,
    pub cgroup: Name,
}

/// Memory pressure (PSI) of a cgroup or of the whole node, sampled by the recorder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryPressure {
    /// The cgroup path; empty for the whole node (`/proc/pressure/memory`).
    pub cgroup: Name,
    /// The share of the last 10 s in which some task (`some`) or every task (`full`) stalled on
    /// memory, in hundredths of a percent (1234 = 12.34 %).
    pub some_avg10: u32,
    pub full_avg10: u32,
    /// Stall time since the previous sample, in microseconds.
    pub some_stall_us: u64,
    pub full_stall_us: u64,
    /// The time since the previous sample, in milliseconds.
    pub interval_ms: u32,
}

/// A process replaced its image (`sched_process_exec`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    pub pid: u32,
    pub ppid: u32,
    pub comm: Name,
    pub filename: Name,
    /// The process's memory cgroup path, e.g. `/kubepods/burstable/pod<uid>/<container-id>`.
    pub cgroup: Name,
}

/// A process ended (`sched_process_exit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    pub pid: u32,
    pub comm: Name,
    /// The exit status passed to `exit()`; meaningful when `signal` is 0.
    pub code: i32,
    /// The signal that terminated the process, 0 when it exited on its own.
    pub signal: u8,
    pub cgroup: Name,
}

/// A signal was generated for a process (`signal_generate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalSent {
    pub sender_pid: u32,
    pub sender_comm: Name,
    pub target_pid: u32,
    pub target_comm: Name,
    pub signal: u8,
}

/// Which memory limit the OOM killer acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomConstraint {
    /// A memory cgroup hit its own limit (`CONSTRAINT_MEMCG`): a container limit.
    Memcg,
    /// The whole machine ran out of memory (`CONSTRAINT_NONE`).
    Global,
    /// A cpuset or mempolicy restricted the allocation.
    Cpuset,
    Mempolicy,
    Unknown,
}

impl OomConstraint {
    /// From the kernel's `constraint=` value (`CONSTRAINT_MEMCG`, …).
    pub fn from_kernel(s: &str) -> OomConstraint {
        match s {
            "CONSTRAINT_MEMCG" => OomConstraint::Memcg,
            "CONSTRAINT_NONE" => OomConstraint::Global,
            "CONSTRAINT_CPUSET" => OomConstraint::Cpuset,
            "CONSTRAINT_MEMORY_POLICY" => OomConstraint::Mempolicy,
            _ => OomConstraint::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OomConstraint::Memcg => "memcg",
            OomConstraint::Global => "global",
            OomConstraint::Cpuset => "cpuset",
            OomConstraint::Mempolicy => "mempolicy",
            OomConstraint::Unknown => "unknown",
        }
    }
}

/// The kernel OOM killer killed a process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OomKill {
    pub victim_pid: u32,
    pub victim_comm: Name,
    /// The victim's own memory cgroup (`task_memcg`); empty when unknown.
    pub task_memcg: Name,
    /// The cgroup whose limit was hit (`oom_memcg`); for a global OOM, `/` or empty.
    pub oom_memcg: Name,
    pub constraint: OomConstraint,
    /// Resident memory of the victim when killed (anon + file + shmem), in KiB; 0 when unknown.
    pub rss_kib: u64,
    /// The victim's total virtual memory in KiB; 0 when unknown.
    pub total_vm_kib: u64,
    /// The memory cgroup's usage and limit at the kill, in KiB, where the report states them.
    pub memcg_usage_kib: Option<u64>,
    pub memcg_limit_kib: Option<u64>,
    /// The task whose allocation invoked the OOM killer; 0 when unknown.
    pub killer_pid: u32,
    pub killer_comm: Name,
}

impl OomKill {
    /// The cgroup that names the victim's container: `task_memcg`, else `oom_memcg`.
    pub fn cgroup(&self) -> &Name {
        if self.task_memcg.is_empty() {
            &self.oom_memcg
        } else {
            &self.task_memcg
        }
    }
}

/// The container id a cgroup path names, in the layouts kubelets and runtimes use:
/// cgroupfs `…/pod<uid>/<id>`, systemd `…/cri-containerd-<id>.scope`, `docker-<id>.scope`,
/// `crio-<id>.scope`, and docker's own `/docker/<id>`. `None` when the last component is not a
/// 64-digit hex id.
pub fn cgroup_container_id(path: &str) -> Option<&str> {
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let id = ["cri-containerd-", "docker-", "crio-", "containerd-"]
        .iter()
        .find_map(|p| last.strip_prefix(p))
        .unwrap_or(last);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The container id of a Kubernetes `containerID` (`containerd://<id>`, `docker://<id>`, `cri-o://<id>`).
pub fn runtime_container_id(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

/// TCP states as the kernel numbers them (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Unknown,
}

impl TcpState {
    /// From the kernel's numeric state (1 = ESTABLISHED … 12 = NEW_SYN_RECV).
    pub fn from_kernel(n: u8) -> TcpState {
        use TcpState::*;
        match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            _ => Unknown,
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TcpState {
    /// The kernel's name of the state (`ESTABLISHED`, `SYN_SENT`, …).
    pub fn as_str(&self) -> &'static str {
        use TcpState::*;
        match self {
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait1 => "FIN_WAIT1",
            FinWait2 => "FIN_WAIT2",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            Closing => "CLOSING",
            NewSynRecv => "NEW_SYN_RECV",
            Unknown => "UNKNOWN",
        }
    }
}

/// What a TCP state change means for the connection's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpMeaning {
    /// `SYN_SENT → ESTABLISHED`: an outgoing connection succeeded.
    Connected,
    /// `SYN_SENT → CLOSE` answered by a reset: nothing listens (ECONNREFUSED).
    Refused,
    /// An established connection was reset by the peer.
    Reset,
    /// `SYN_SENT → CLOSE` after retransmitted SYNs: no answer (ETIMEDOUT).
    Timeout,
    /// An orderly close.
    Closed,
    /// Any other transition.
    Other,
}

impl TcpMeaning {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpMeaning::Connected => "connected",
            TcpMeaning::Refused => "refused",
            TcpMeaning::Reset => "reset",
            TcpMeaning::Timeout => "timeout",
            TcpMeaning::Closed => "closed",
            TcpMeaning::Other => "other",
        }
    }
}

/// A TCP socket changed state (`inet_sock_set_state`), with its meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpStateChange {
    /// The process in whose context the change happened; 0 when it ran in softirq context.
    pub pid: u32,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub old: TcpState,
    pub new: TcpState,
    pub meaning: TcpMeaning,
}

/// Retransmitted segments of one connection over an interval (aggregated in the kernel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpRetransmit {
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub state: TcpState,
    /// How many segments were retransmitted in the interval.
    pub count: u32,
    /// The length of the aggregation interval in milliseconds (0: one raw event).
    pub interval_ms: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_come_out_of_every_cgroup_layout() {
        let id = "ef807430361e6e82b45db92e2e9b6fbec98f419b12c591e655c1a725565e73a8";
        for path in [
            format!("/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012/{id}"),
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podfbdfe8e3_1c87.slice/cri-containerd-{id}.scope"),
            format!("/system.slice/docker-{id}.scope"),
            format!("/kubepods.slice/kubepods-pod1.slice/crio-{id}.scope"),
            format!("/docker/{id}"),
        ] {
            assert_eq!(cgroup_container_id(&path), Some(id), "{path}");
        }
        assert_eq!(cgroup_container_id("/mem2"), None);
        assert_eq!(cgroup_container_id("/kubepods/burstable/podfbdfe8e3"), None);
        assert_eq!(runtime_container_id(&format!("containerd://{id}")), id);
    }
}
