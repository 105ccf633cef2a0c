//! The kernel source of `tapio record`: eBPF probes on tracepoints, loaded with aya, reporting
//! through one ring buffer.
//!
//! The probes are C (`ebpf/tapio.bpf.c`, compiled by `ebpf/build.sh`; the object is embedded in
//! the binary, so a build needs no clang). Each record carries the kernfs id of its task's memory
//! cgroup; [`cgroup::Resolver`] turns it into the path that names a container. A record the ring
//! buffer had no room for is counted in the kernel and becomes a drop marker in the capture:
//! nothing is lost silently. Retransmits are counted per connection in a map that
//! [`Recorder::tick`] sweeps once a second; memory pressure is sampled from PSI files.
//!
//! No tokio here: the recorder's thread reads the ring buffer on a short timer ([`Recorder::drain`]).

pub mod cgroup;
pub mod cpu;
pub mod pressure;
mod run;
pub mod wire;

use std::collections::HashMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, ProgramError, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::event::{
    Event, Exec, Exit, Kernel, Meta, Name, OomConstraint, OomKill, SignalSent, Source, Task,
    TcpMeaning, TcpRetransmit, TcpState, TcpStateChange, TimeRange, Ts,
};
use wire::{cstr, Record};

/// The compiled probes (`ebpf/build.sh` rebuilds this object; CI checks it matches its source).
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../../../ebpf/tapio.bpf.o");

/// What the recorder can watch (`tapio record --kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    Oom,
    Exec,
    Exit,
    Signal,
    Tcp,
    Retransmit,
    Pressure,
}

named!(Probe, "probe" {
    Oom => "oom",
    Exec => "exec",
    Exit => "exit",
    Signal => "signal",
    Tcp => "tcp",
    Retransmit => "retransmit",
    Pressure => "pressure",
});

impl std::str::FromStr for Probe {
    type Err = String;
    fn from_str(s: &str) -> Result<Probe, String> {
        Probe::parse_name(s)
    }
}

impl Probe {
    /// The programs of the object that implement this probe: (name, tracepoint category, name).
    fn programs(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Probe::Oom => &[("tapio_oom", "", "mark_victim")],
            Probe::Exec => &[("tapio_exec", "sched", "sched_process_exec")],
            Probe::Exit => &[("tapio_exit", "sched", "sched_process_exit")],
            Probe::Signal => &[("tapio_signal", "", "signal_generate")],
            Probe::Tcp => &[
                ("tapio_reset", "tcp", "tcp_receive_reset"),
                ("tapio_tcp", "sock", "inet_sock_set_state"),
            ],
            Probe::Retransmit => &[("tapio_retransmit", "tcp", "tcp_retransmit_skb")],
            Probe::Pressure => &[],
        }
    }
}

/// How to record.
#[derive(Clone, Debug)]
pub struct Options {
    pub probes: Vec<Probe>,
    /// The ring buffer's size in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
    /// How often memory pressure is sampled.
    pub pressure_every: Duration,
    /// The node name written into every event.
    pub node: Name,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            probes: Probe::ALL.to_vec(),
            ring_bytes: 8 << 20,
            pressure_every: Duration::from_secs(10),
            node: Name::default(),
        }
    }
}

/// Why the kernel cannot be recorded; each names its fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("recording the kernel needs root (or CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN): run `sudo tapio record …`, or deploy the privileged DaemonSet of deploy/")]
    NotPermitted,
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): tapio's probes need Linux ≥ 5.8 built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("tracefs is not mounted at /sys/kernel/tracing and mounting it failed ({0}): mount it (`mount -t tracefs nodev /sys/kernel/tracing`), or in a container mount the host's /sys/kernel/tracing")]
    NoTracefs(String),
    #[error("the kernel refused probe {program}: {error}\nverifier log:\n{log}")]
    Load {
        program: String,
        error: String,
        log: String,
    },
    #[error("could not attach probe {program} to tracepoint {tracepoint}: {error}")]
    Attach {
        program: String,
        tracepoint: String,
        error: String,
    },
    #[error("could not set up the eBPF probes: {0}")]
    Setup(String),
}

/// Checks what recording needs before anything is loaded, and mounts tracefs when it is missing.
pub fn preflight() -> Result<PathBuf, Error> {
    if !permitted() {
        return Err(Error::NotPermitted);
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Error::NoBtf);
    }
    tracefs()
}

fn permitted() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    const SYS_ADMIN: u64 = 1 << 21;
    const PERFMON: u64 = 1 << 38;
    const BPF: u64 = 1 << 39;
    caps & SYS_ADMIN != 0 || (caps & BPF != 0 && caps & PERFMON != 0)
}

/// The tracefs mount, mounted at `/sys/kernel/tracing` when neither it nor debugfs's copy is.
fn tracefs() -> Result<PathBuf, Error> {
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(p).join("events").is_dir() {
            return Ok(PathBuf::from(p));
        }
    }
    let target = "/sys/kernel/tracing";
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (src, dst, fs) = (c("nodev"), c(target), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(Error::NoTracefs(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    if Path::new(target).join("events").is_dir() {
        Ok(PathBuf::from(target))
    } else {
        Err(Error::NoTracefs(
            "mounted, but it has no events directory".into(),
        ))
    }
}

/// CLOCK_MONOTONIC (what `bpf_ktime_get_ns` reads) to wall-clock time.
struct Clock {
    offset: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to write into.
    unsafe { libc::clock_gettime(id, &mut t) };
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

impl Clock {
    fn now() -> Clock {
        // The narrowest of a few readings: least disturbed by a preemption between the two calls.
        let mut best = (i128::MAX, 0);
        for _ in 0..5 {
            let a = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_MONOTONIC);
            if b - a < best.0 {
                best = (b - a, r - (a + b) / 2);
            }
        }
        Clock { offset: best.1 }
    }

    fn wall(&self, mono: u64) -> Ts {
        Ts((mono as i128 + self.offset).clamp(0, u64::MAX as i128) as u64)
    }

    fn mono_now() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC) as u64
    }
}

/// The boot time as wall-clock time (for the capture header).
pub fn boot_time() -> Ts {
    Ts((clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)).max(0) as u64)
}

/// Counters of a recording, for the status line and the closing summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Records read from the ring buffer.
    pub records: u64,
    /// Records the kernel could not write (ring buffer full).
    pub dropped: u64,
    /// Records that could not be read (never expected; counted as drops too).
    pub malformed: u64,
}

/// Loaded, attached probes and what turns their records into events.
pub struct Recorder {
    // Keeps the programs loaded and attached.
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    retransmits: Option<BpfHashMap<MapData, wire::RetransKey, wire::RetransVal>>,
    decoder: Decoder,
    pressure: Option<(pressure::Sampler, Instant, Duration)>,
    /// CPU throttling of the pods, sampled with the pressure.
    throttle: Option<(cpu::Sampler, Instant, Duration)>,
    dropped_seen: u64,
    last_tick: Ts,
    counters: Counters,
    warnings: Vec<String>,
    node: Name,
}

impl Recorder {
    /// Checks the machine, loads the probes of `opts` and attaches them.
    pub fn start(opts: &Options) -> Result<Recorder, Error> {
        let tracefs = preflight()?;
        raise_memlock();
        let mut warnings = Vec::new();
        let mut probes = opts.probes.clone();
        if probes.contains(&Probe::Oom) && !mark_victim_has_task(&tracefs) {
            probes.retain(|p| *p != Probe::Oom);
            warnings.push("this kernel's oom/mark_victim tracepoint predates Linux 6.8 and does not name the victim's task: OOM kills are not recorded from eBPF (import the kernel log with `tapio import` instead)".to_string());
        }
        let btf = Btf::from_sys_fs().map_err(|e| Error::Setup(format!("reading BTF: {e}")))?;
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        let ring_bytes = opts.ring_bytes.max(page_size).next_power_of_two();
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .set_max_entries("events", ring_bytes)
            .set_global("page_size", &page_size, true)
            .load(OBJECT)
            .map_err(|e| Error::Setup(format!("{e}")))?;
        for probe in &probes {
            for &(name, category, tracepoint) in probe.programs() {
                attach(&mut ebpf, &btf, name, category, tracepoint)?;
            }
        }
        let map = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| Error::Setup(format!("the object has no map {name}")))
        };
        let ring = RingBuf::try_from(map(&mut ebpf, "events")?)
            .map_err(|e| Error::Setup(format!("ring buffer: {e}")))?;
        let drops = PerCpuArray::try_from(map(&mut ebpf, "drops")?)
            .map_err(|e| Error::Setup(format!("drop counter: {e}")))?;
        let retransmits = if probes.contains(&Probe::Retransmit) {
            Some(
                BpfHashMap::try_from(map(&mut ebpf, "retransmits")?)
                    .map_err(|e| Error::Setup(format!("retransmit map: {e}")))?,
            )
        } else {
            None
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let hierarchy = cgroup::memory_hierarchy(&mountinfo);
        let pressure = if probes.contains(&Probe::Pressure) {
            let v2 = hierarchy
                .clone()
                .filter(|h| h.join("cgroup.controllers").exists());
            let sampler = pressure::Sampler::new(v2);
            if sampler.available() {
                Some((sampler, Instant::now(), opts.pressure_every))
            } else {
                warnings.push("this kernel reports no memory pressure (/proc/pressure/memory is missing: boot with psi=1): pressure is not recorded".to_string());
                None
            }
        } else {
            None
        };
        let throttle = probes
            .contains(&Probe::Pressure)
            .then(|| cpu::cpu_root(&mountinfo))
            .flatten()
            .map(|root| (cpu::Sampler::new(root), Instant::now(), opts.pressure_every));
        let decoder = Decoder::new(opts.node.clone(), cgroup::Resolver::new(hierarchy));
        let last_tick = decoder.clock.wall(Clock::mono_now());
        Ok(Recorder {
            _ebpf: ebpf,
            ring,
            drops,
            retransmits,
            decoder,
            pressure,
            throttle,
            dropped_seen: 0,
            last_tick,
            counters: Counters::default(),
            warnings,
            node: opts.node.clone(),
        })
    }

    /// Things the user should know about the recording (a probe this kernel cannot run …).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Reads at most `max` records without waiting.
    pub fn drain(&mut self, max: usize, out: &mut Vec<Event>) {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next() else { break };
            n += 1;
            match Record::parse(&item) {
                Ok(r) => self.decoder.decode(r, out),
                Err(_) => self.counters.malformed += 1,
            }
        }
        self.counters.records += n as u64;
    }

    /// Once a second or so: drop markers, swept retransmit counts, pressure samples.
    pub fn tick(&mut self, out: &mut Vec<Event>) {
        self.decoder.clock = Clock::now();
        let now = self.decoder.clock.wall(Clock::mono_now());
        let dropped: u64 = self
            .drops
            .get(&0, 0)
            .map(|v| v.iter().sum())
            .unwrap_or(self.dropped_seen)
            + self.counters.malformed;
        if dropped > self.dropped_seen {
            let count = dropped - self.dropped_seen;
            self.dropped_seen = dropped;
            self.counters.dropped = dropped;
            let reason = if self.counters.malformed > 0 {
                "ring buffer full, or records that could not be read"
            } else {
                "ring buffer full"
            };
            out.push(Event::new(
                now,
                self.decoder.node.clone(),
                Source::Tapio,
                Meta::Drop {
                    source: Source::Ebpf,
                    count,
                    range: TimeRange {
                        from: self.last_tick,
                        to: now,
                    },
                    reason: reason.to_string(),
                },
            ));
        }
        self.last_tick = now;
        if let Some(map) = &mut self.retransmits {
            let keys: Vec<wire::RetransKey> = map.keys().filter_map(Result::ok).collect();
            for k in keys {
                if let Ok(v) = map.get(&k, 0) {
                    let _ = map.remove(&k);
                    self.decoder.retransmit(&k, &v, out);
                }
            }
        }
        if let Some((sampler, last, every)) = &mut self.throttle {
            if last.elapsed() >= *every {
                *last = Instant::now();
                for t in sampler.sample() {
                    out.push(Event::new(
                        now,
                        self.decoder.node.clone(),
                        Source::Ebpf,
                        Kernel::CpuThrottle(t),
                    ));
                }
            }
        }
        if let Some((sampler, last, every)) = &mut self.pressure {
            if last.elapsed() >= *every {
                *last = Instant::now();
                for p in sampler.sample() {
                    out.push(Event::new(
                        now,
                        self.decoder.node.clone(),
                        Source::Ebpf,
                        Kernel::Pressure(p),
                    ));
                }
            }
        }
    }
}

fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    name: &str,
    category: &str,
    tracepoint: &str,
) -> Result<(), Error> {
    let load_error = |e: ProgramError| match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => Error::Load {
            program: name.to_string(),
            error: io_error.to_string(),
            log: verifier_log.to_string(),
        },
        other => Error::Load {
            program: name.to_string(),
            error: other.to_string(),
            log: String::new(),
        },
    };
    let attach_error = |e: ProgramError| Error::Attach {
        program: name.to_string(),
        tracepoint: if category.is_empty() {
            format!("tp_btf/{tracepoint}")
        } else {
            format!("{category}/{tracepoint}")
        },
        error: e.to_string(),
    };
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| Error::Setup(format!("the object has no program {name}")))?;
    if category.is_empty() {
        let p: &mut BtfTracePoint = program
            .try_into()
            .map_err(|e: ProgramError| Error::Setup(e.to_string()))?;
        p.load(tracepoint, btf).map_err(load_error)?;
        p.attach().map_err(attach_error)?;
    } else {
        let p: &mut TracePoint = program
            .try_into()
            .map_err(|e: ProgramError| Error::Setup(e.to_string()))?;
        p.load().map_err(load_error)?;
        p.attach(category, tracepoint).map_err(attach_error)?;
    }
    Ok(())
}

/// Before Linux 5.11, BPF memory counts against RLIMIT_MEMLOCK.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit; failure leaves the old limit, which newer kernels do not use.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}

/// Since Linux 6.8 `mark_victim` passes the victim's task (and its format has a `uid` field).
fn mark_victim_has_task(tracefs: &Path) -> bool {
    std::fs::read_to_string(tracefs.join("events/oom/mark_victim/format"))
        .is_ok_and(|f| f.contains("uid_t uid"))
}

/// Turns records into events: wall-clock times, cgroup paths, interned names, and a [`Task`]
/// before the first event that names a process the recorder has not seen start.
struct Decoder {
    node: Name,
    clock: Clock,
    cgroups: cgroup::Resolver,
    comms: HashMap<[u8; wire::COMM_LEN], Name>,
    /// pid → the cgroup id it was last announced with (by an exec or a task event).
    announced: HashMap<u32, u64>,
}

const MAX_TRACKED: usize = 1 << 16;

impl Decoder {
    fn new(node: Name, cgroups: cgroup::Resolver) -> Decoder {
        Decoder {
            node,
            clock: Clock::now(),
            cgroups,
            comms: HashMap::new(),
            announced: HashMap::new(),
        }
    }

    fn comm(&mut self, raw: &[u8; wire::COMM_LEN]) -> Name {
        if let Some(n) = self.comms.get(raw) {
            return n.clone();
        }
        if self.comms.len() >= MAX_TRACKED {
            self.comms.clear();
        }
        let n = Name::from(cstr(raw).as_ref());
        self.comms.insert(*raw, n.clone());
        n
    }

    fn push(&self, out: &mut Vec<Event>, ts: Ts, k: Kernel) {
        out.push(Event::new(ts, self.node.clone(), Source::Ebpf, k));
    }

    fn remember(&mut self, pid: u32, cgroup: u64) {
        if self.announced.len() >= MAX_TRACKED {
            self.announced.clear();
        }
        self.announced.insert(pid, cgroup);
    }

    /// Writes a task event for `pid` unless it was announced with this cgroup already.
    fn announce(&mut self, out: &mut Vec<Event>, ts: Ts, pid: u32, comm: &[u8; 16], cgroup: u64) {
        if pid == 0 || cgroup == 0 || self.announced.get(&pid) == Some(&cgroup) {
            return;
        }
        self.remember(pid, cgroup);
        let task = Task {
            pid,
            comm: self.comm(comm),
            cgroup: self.cgroups.path(cgroup),
        };
        self.push(out, ts, Kernel::Task(task));
    }

    fn decode(&mut self, r: Record, out: &mut Vec<Event>) {
        match r {
            Record::Exec(x) => {
                let ts = self.clock.wall(x.hdr.ts);
                self.remember(x.hdr.pid, x.hdr.cgroup);
                let exec = Exec {
                    pid: x.hdr.pid,
                    ppid: x.ppid,
                    comm: self.comm(&x.hdr.comm),
                    filename: Name::from(cstr(&x.filename).as_ref()),
                    cgroup: self.cgroups.path(x.hdr.cgroup),
                };
                self.push(out, ts, Kernel::Exec(exec));
            }
            Record::Exit(x) => {
                let ts = self.clock.wall(x.hdr.ts);
                self.announced.remove(&x.hdr.pid);
                let exit = Exit {
                    pid: x.hdr.pid,
                    comm: self.comm(&x.hdr.comm),
                    code: (x.exit_code >> 8) & 0xff,
                    signal: (x.exit_code & 0x7f) as u8,
                    cgroup: self.cgroups.path(x.hdr.cgroup),
                };
                self.push(out, ts, Kernel::Exit(exit));
            }
            Record::Signal(s) => {
                let ts = self.clock.wall(s.hdr.ts);
                self.announce(out, ts, s.target_pid, &s.target_comm, s.target_cgroup);
                let sig = SignalSent {
                    sender_pid: s.hdr.pid,
                    sender_comm: self.comm(&s.hdr.comm),
                    target_pid: s.target_pid,
                    target_comm: self.comm(&s.target_comm),
                    signal: s.sig.clamp(0, 255) as u8,
                };
                self.push(out, ts, Kernel::Signal(sig));
            }
            Record::Oom(o) => {
                let ts = self.clock.wall(o.hdr.ts);
                let kill = self.oom(&o);
                self.push(out, ts, Kernel::OomKill(Box::new(kill)));
            }
            Record::Tcp(t) => {
                let ts = self.clock.wall(t.hdr.ts);
                self.announce(out, ts, t.hdr.pid, &t.hdr.comm, t.hdr.cgroup);
                let old = TcpState::from_kernel(t.oldstate);
                let new = TcpState::from_kernel(t.newstate);
                let meaning = match (old, new) {
                    (TcpState::SynSent, TcpState::Established) => TcpMeaning::Connected,
                    (TcpState::SynSent, TcpState::Close) if t.rst != 0 => TcpMeaning::Refused,
                    (TcpState::SynSent, TcpState::Close) => TcpMeaning::Timeout,
                    (_, TcpState::Close) if t.rst != 0 => TcpMeaning::Reset,
                    (_, TcpState::Close) => TcpMeaning::Closed,
                    _ => TcpMeaning::Other,
                };
                let change = TcpStateChange {
                    pid: t.hdr.pid,
                    saddr: addr(t.family, &t.saddr),
                    sport: t.sport,
                    daddr: addr(t.family, &t.daddr),
                    dport: t.dport,
                    old,
                    new,
                    meaning,
                };
                self.push(out, ts, Kernel::TcpState(change));
            }
        }
    }

    fn oom(&mut self, o: &wire::Oom) -> OomKill {
        let depth = (o.depth as usize).min(wire::CGROUP_DEPTH);
        // path[0] is the victim's own cgroup, path[depth-1] the child of the root.
        let join = |from: usize| -> String {
            let parts: Vec<_> = o.path[from..depth].iter().rev().map(|p| cstr(p)).collect();
            format!("/{}", parts.join("/"))
        };
        let task_memcg = Name::from(join(0).as_str());
        self.cgroups.learn(o.victim_cgroup, &task_memcg);
        let page_kib = u64::from(o.page_size.max(1024) / 1024);
        let (constraint, oom_memcg, usage, limit) = match usize::try_from(o.oom_level) {
            Ok(level) if level < depth.max(1) => (
                OomConstraint::Memcg,
                Name::from(join(level.min(depth)).as_str()),
                Some(o.memcg_usage * page_kib),
                Some(o.memcg_limit * page_kib),
            ),
            _ => (OomConstraint::Global, Name::from("/"), None, None),
        };
        OomKill {
            victim_pid: o.victim_pid,
            victim_comm: self.comm(&o.victim_comm),
            task_memcg,
            oom_memcg,
            constraint,
            rss_kib: (o.anon_rss + o.file_rss + o.shmem_rss) * page_kib,
            total_vm_kib: o.total_vm * page_kib,
            memcg_usage_kib: usage,
            memcg_limit_kib: limit,
            killer_pid: o.hdr.pid,
            killer_comm: self.comm(&o.hdr.comm),
        }
    }

    fn retransmit(&mut self, k: &wire::RetransKey, v: &wire::RetransVal, out: &mut Vec<Event>) {
        let ts = self.clock.wall(v.last);
        let r = TcpRetransmit {
            saddr: addr(k.family, &k.saddr),
            sport: k.sport,
            daddr: addr(k.family, &k.daddr),
            dport: k.dport,
            state: TcpState::from_kernel(v.state.min(255) as u8),
            count: v.count,
            interval_ms: if v.count > 1 {
                (v.last.saturating_sub(v.first) / 1_000_000).max(1) as u32
            } else {
                0
            },
        };
        self.push(out, ts, Kernel::TcpRetransmit(r));
    }
}

fn addr(family: u16, raw: &[u8; 16]) -> IpAddr {
    const AF_INET: u16 = 2;
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(Name::from("node-1"), cgroup::Resolver::new(None))
    }

    fn name16(s: &str) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    }

    fn hdr(kind: u32, pid: u32, comm: &str) -> wire::Hdr {
        wire::Hdr {
            ts: 1_000,
            cgroup: 0,
            pid,
            kind,
            comm: name16(comm),
        }
    }

    #[test]
    fn an_oom_record_names_the_victims_cgroup_and_the_limit_that_was_hit() {
        let mut o: wire::Oom = unsafe { std::mem::zeroed() };
        o.hdr = hdr(wire::OOM, 900, "stress");
        o.victim_pid = 4711;
        o.victim_comm = name16("java");
        let parts = ["0123abcd", "pod1234", "burstable", "kubepods"];
        for (i, p) in parts.iter().enumerate() {
            o.path[i][..p.len()].copy_from_slice(p.as_bytes());
        }
        o.depth = 4;
        o.oom_level = 0;
        o.memcg_usage = 512;
        o.memcg_limit = 512;
        o.page_size = 4096;
        o.anon_rss = 500;
        o.file_rss = 10;
        let kill = decoder().oom(&o);
        assert_eq!(
            kill.task_memcg.as_str(),
            "/kubepods/burstable/pod1234/0123abcd"
        );
        assert_eq!(kill.oom_memcg, kill.task_memcg);
        assert_eq!(kill.constraint, OomConstraint::Memcg);
        assert_eq!(kill.memcg_limit_kib, Some(2048));
        assert_eq!(kill.rss_kib, 510 * 4);
        assert_eq!(
            (kill.killer_pid, kill.killer_comm.as_str()),
            (900, "stress")
        );

        // The limit of the pod's cgroup (level 1) was hit; the victim is in a container under it.
        o.oom_level = 1;
        assert_eq!(
            decoder().oom(&o).oom_memcg.as_str(),
            "/kubepods/burstable/pod1234"
        );
        // No cgroup at its limit: the whole machine ran out.
        o.oom_level = -1;
        let global = decoder().oom(&o);
        assert_eq!(
            (global.constraint, global.oom_memcg.as_str()),
            (OomConstraint::Global, "/")
        );
        assert_eq!(global.memcg_limit_kib, None);
    }

    #[test]
    fn tcp_outcomes_and_exit_codes() {
        let mut d = decoder();
        let mut t = wire::Tcp {
            hdr: hdr(wire::TCP, 77, "curl"),
            family: 2,
            sport: 40000,
            dport: 9,
            oldstate: 2,
            newstate: 7,
            rst: 1,
            _pad: [0; 7],
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        t.hdr.cgroup = 5; // unknown to the resolver: announced with an empty path
        let mut out = Vec::new();
        d.decode(Record::Tcp(t), &mut out);
        t.rst = 0;
        d.decode(Record::Tcp(t), &mut out);
        let meanings: Vec<_> = out
            .iter()
            .filter_map(|e| match &e.body {
                crate::event::Body::Kernel(Kernel::TcpState(s)) => Some(s.meaning),
                _ => None,
            })
            .collect();
        assert_eq!(meanings, [TcpMeaning::Refused, TcpMeaning::Timeout]);
        assert_eq!(
            out.len(),
            3,
            "one task event before the first event of pid 77"
        );

        let mut out = Vec::new();
        for code in [3 << 8, 9, 0x80 | 11] {
            let x = wire::Exit {
                hdr: hdr(wire::EXIT, 78, "sh"),
                exit_code: code,
                _pad: 0,
            };
            d.decode(Record::Exit(x), &mut out);
        }
        let got: Vec<_> = out
            .iter()
            .filter_map(|e| match &e.body {
                crate::event::Body::Kernel(Kernel::Exit(x)) => Some((x.code, x.signal)),
                _ => None,
            })
            .collect();
        assert_eq!(got, [(3, 0), (0, 9), (0, 11)]);
    }
}
