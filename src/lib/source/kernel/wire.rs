//! The records the eBPF probes write, as `ebpf/tapio.h` defines them, and their decoding.
//!
//! The C header is the one definition; these structs mirror it field for field. Their sizes are
//! checked at compile time here and in C (`TAPIO_CHECK_SIZE`), and a test reads the C sizes out of
//! the header so that a change on one side cannot go unnoticed.

use std::mem::size_of;

pub const COMM_LEN: usize = 16;
pub const FILENAME_LEN: usize = 256;
pub const CGROUP_DEPTH: usize = 8;
pub const CGROUP_NAME_LEN: usize = 128;

pub const EXEC: u32 = 1;
pub const EXIT: u32 = 2;
pub const SIGNAL: u32 = 3;
pub const OOM: u32 = 4;
pub const TCP: u32 = 5;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Hdr {
    pub ts: u64,
    pub cgroup: u64,
    pub pid: u32,
    pub kind: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Exec {
    pub hdr: Hdr,
    pub ppid: u32,
    pub _pad: u32,
    pub filename: [u8; FILENAME_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub hdr: Hdr,
    pub exit_code: i32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Signal {
    pub hdr: Hdr,
    pub target_pid: u32,
    pub sig: i32,
    pub result: i32,
    pub code: i32,
    pub target_cgroup: u64,
    pub target_comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Oom {
    pub hdr: Hdr,
    pub victim_pid: u32,
    pub depth: u32,
    pub victim_cgroup: u64,
    pub victim_comm: [u8; COMM_LEN],
    pub total_vm: u64,
    pub anon_rss: u64,
    pub file_rss: u64,
    pub shmem_rss: u64,
    pub memcg_usage: u64,
    pub memcg_limit: u64,
    pub oom_level: i32,
    pub page_size: u32,
    pub path: [[u8; CGROUP_NAME_LEN]; CGROUP_DEPTH],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub hdr: Hdr,
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub oldstate: u8,
    pub newstate: u8,
    pub rst: u8,
    pub _pad: [u8; 7],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RetransKey {
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub _pad: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RetransVal {
    pub first: u64,
    pub last: u64,
    pub count: u32,
    pub state: u32,
}

// SAFETY: plain old data, `#[repr(C)]`, every bit pattern valid, padding spelled out.
unsafe impl aya::Pod for RetransKey {}
unsafe impl aya::Pod for RetransVal {}

/// The sizes `ebpf/tapio.h` asserts, by struct name.
pub const SIZES: &[(&str, usize)] = &[
    ("tapio_hdr", size_of::<Hdr>()),
    ("tapio_exec", size_of::<Exec>()),
    ("tapio_exit", size_of::<Exit>()),
    ("tapio_signal", size_of::<Signal>()),
    ("tapio_oom", size_of::<Oom>()),
    ("tapio_tcp", size_of::<Tcp>()),
    ("tapio_retrans_key", size_of::<RetransKey>()),
    ("tapio_retrans_val", size_of::<RetransVal>()),
];

const _: () = assert!(size_of::<Hdr>() == 40);
const _: () = assert!(size_of::<Exec>() == 304);
const _: () = assert!(size_of::<Exit>() == 48);
const _: () = assert!(size_of::<Signal>() == 80);
const _: () = assert!(size_of::<Oom>() == 1152);
const _: () = assert!(size_of::<Tcp>() == 88);
const _: () = assert!(size_of::<RetransKey>() == 40);
const _: () = assert!(size_of::<RetransVal>() == 24);

/// One record of the ring buffer.
pub enum Record {
    Exec(Box<Exec>),
    Exit(Exit),
    Signal(Signal),
    Oom(Box<Oom>),
    Tcp(Tcp),
}

/// Why a record could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    Short { len: usize },
    Kind { kind: u32 },
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Short { len } => write!(f, "a {len}-byte record is too short"),
            Malformed::Kind { kind } => write!(f, "unknown record kind {kind}"),
        }
    }
}

fn read<T: Copy>(bytes: &[u8]) -> Result<T, Malformed> {
    if bytes.len() < size_of::<T>() {
        return Err(Malformed::Short { len: bytes.len() });
    }
    // SAFETY: the length is checked; T is a `#[repr(C)]` struct of integers and byte arrays, for
    // which every bit pattern is valid; the read is unaligned.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

impl Record {
    pub fn parse(bytes: &[u8]) -> Result<Record, Malformed> {
        let hdr: Hdr = read(bytes)?;
        Ok(match hdr.kind {
            EXEC => Record::Exec(Box::new(read(bytes)?)),
            EXIT => Record::Exit(read(bytes)?),
            SIGNAL => Record::Signal(read(bytes)?),
            OOM => Record::Oom(Box::new(read(bytes)?)),
            TCP => Record::Tcp(read(bytes)?),
            kind => return Err(Malformed::Kind { kind }),
        })
    }
}

/// A NUL-terminated string out of a fixed-size field (lossy for non-UTF-8 bytes).
pub fn cstr(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_c_header() {
        let header = include_str!("../../../../ebpf/tapio.h");
        let mut checked = 0;
        for line in header.lines() {
            let Some(rest) = line.strip_prefix("TAPIO_CHECK_SIZE(") else {
                continue;
            };
            let (name, size) = rest.trim_end_matches(");").split_once(", ").unwrap();
            let size: usize = size.parse().unwrap();
            let ours = SIZES.iter().find(|(n, _)| *n == name);
            assert_eq!(ours.map(|(_, s)| *s), Some(size), "{name}");
            checked += 1;
        }
        assert_eq!(checked, SIZES.len());
    }

    #[test]
    fn records_parse_by_kind_and_short_ones_are_refused() {
        let mut bytes = vec![0u8; size_of::<Exit>()];
        bytes[20..24].copy_from_slice(&EXIT.to_ne_bytes());
        bytes[40..44].copy_from_slice(&(3i32 << 8).to_ne_bytes());
        match Record::parse(&bytes) {
            Ok(Record::Exit(x)) => assert_eq!(x.exit_code, 768),
            _ => panic!("not an exit"),
        }
        assert_eq!(
            Record::parse(&bytes[..30]).err(),
            Some(Malformed::Short { len: 30 })
        );
        assert_eq!(
            Record::parse(&bytes[..44]).err(),
            Some(Malformed::Short { len: 44 })
        );
        bytes[20..24].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(
            Record::parse(&bytes).err(),
            Some(Malformed::Kind { kind: 99 })
        );
        assert_eq!(cstr(b"java\0\0junk"), "java");
    }
}
