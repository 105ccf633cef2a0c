//! Sizes for people: `2.0 GiB`, `980 KiB`, `12 B`.

/// `2.0 GiB`, `980 KiB`.
pub fn kib(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} KiB")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A byte count for people: `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        kib(n / 1024)
    }
}
