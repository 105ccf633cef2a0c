//! [`Name`]: a shared string for values that repeat from event to event.
//!
//! Node names, process names, executable paths and cgroup paths repeat in almost every kernel
//! event; attribute keys and service names in every span. In memory they are shared (`Arc<str>`),
//! and those read from a capture are interned for the life of the process (up to a budget), so
//! that an event's names cost nothing to copy or drop on any of the threads it passes through; in
//! a capture block each distinct value is written once and then referred to by number. That
//! halves the decoder's work: far fewer bytes to decompress and no allocation per event.
//!
//! The numbering lives in a table that the capture codec installs for the duration of one block
//! ([`with_encoder`], [`with_decoder`]). Outside a block (JSON, or postcard without the codec),
//! a `Name` is a plain string.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable, cheaply cloned string: shared (`Arc<str>`), or interned for the life of the
/// process ([`Name::interned`]), when a copy costs nothing at all — no reference count to keep
/// in step across the threads an event passes through.
pub struct Name {
    /// The first byte of the string: of an `Arc<str>`'s data, or of an interned string.
    ptr: NonNull<u8>,
    /// The string's length; the top bit set when it is interned (a string is never longer than
    /// `isize::MAX` bytes, so the bit is free).
    len: usize,
}

/// Set in [`Name::len`] for an interned name.
const INTERNED: usize = 1 << (usize::BITS - 1);

// SAFETY: a `Name` is an `Arc<str>` or a `&'static str`, both `Send` and `Sync`.
unsafe impl Send for Name {}
unsafe impl Sync for Name {}

impl Name {
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: `ptr` and the length are those of a live `str`: an interned one lives for the
        // process, a shared one as long as this `Name` holds its count.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.ptr.as_ptr(),
                self.len & !INTERNED,
            ))
        }
    }

    fn from_static(s: &'static str) -> Name {
        Name {
            // A `&str`'s pointer is never null (dangling but aligned when empty).
            ptr: NonNull::from(s.as_bytes()).cast(),
            len: s.len() | INTERNED,
        }
    }

    fn is_interned(&self) -> bool {
        self.len & INTERNED != 0
    }

    /// The `Arc<str>` a shared name holds, as `Arc::into_raw` gave it.
    fn shared_ptr(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.ptr.as_ptr().cast_const(), self.len) as *const str
    }

    /// `s` interned: the same string for every call with the same text, kept until the process
    /// ends. For the names that recur through a whole capture (nodes, commands, executables,
    /// cgroups, attribute keys, services): the capture decoder interns each name of a block's
    /// table. The interned names are bounded ([`INTERN_BUDGET`] bytes, strings up to
    /// [`INTERN_MAX`]); past that, a shared copy is made as [`Name::from`] does.
    pub fn interned(s: &str) -> Name {
        if s.len() > INTERN_MAX {
            return Name::from(s);
        }
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        match pool.get(s) {
            Some(t) => Name::from_static(t),
            None => Name::from(s),
        }
    }
}

/// The most memory [`Name::interned`] keeps, text and set together: a capture of many thousands
/// of pods' cgroups, commands and executables uses a small part of it. The budget is the
/// process's: once spent (a process reading capture after capture of ever new names), names are
/// shared copies again, as correct and a little slower.
pub const INTERN_BUDGET: usize = 16 << 20;

/// The longest string [`Name::interned`] keeps.
pub const INTERN_MAX: usize = 1024;

/// How much interned text is kept in one allocation.
const POOL_CHUNK: usize = 64 << 10;

/// What an interned string costs besides its text, charged to the budget: its slot in the set
/// (16 bytes and a control byte), with the room the set keeps to grow (it doubles).
const ENTRY_COST: usize = 40;

static POOL: Mutex<Pool> = Mutex::new(Pool::new(INTERN_BUDGET));

/// The interned strings, copied into chunks that are never freed.
struct Pool {
    set: Option<HashSet<&'static str>>,
    /// The rest of the current chunk.
    free: &'static mut [u8],
    /// Bytes taken from the budget: whole chunks, and [`ENTRY_COST`] a string.
    used: usize,
    budget: usize,
}

impl Pool {
    const fn new(budget: usize) -> Pool {
        Pool {
            set: None,
            free: &mut [],
            used: 0,
            budget,
        }
    }

    /// `s` if interned, else interned now if the budget allows.
    fn get(&mut self, s: &str) -> Option<&'static str> {
        let set = self.set.get_or_insert_with(HashSet::new);
        if let Some(&t) = set.get(s) {
            return Some(t);
        }
        let chunk = if self.free.len() < s.len() {
            POOL_CHUNK
        } else {
            0
        };
        if self.used + chunk + ENTRY_COST > self.budget {
            return None;
        }
        self.used += chunk + ENTRY_COST;
        if chunk > 0 {
            self.free = Box::leak(vec![0u8; chunk].into_boxed_slice());
        }
        let (head, rest) = std::mem::take(&mut self.free).split_at_mut(s.len());
        self.free = rest;
        head.copy_from_slice(s.as_bytes());
        let t: &'static str = std::str::from_utf8(head).ok()?;
        set.insert(t);
        Some(t)
    }
}

impl Clone for Name {
    #[inline]
    fn clone(&self) -> Name {
        if !self.is_interned() {
            // SAFETY: a shared name holds one count of the `Arc<str>` it was made from.
            unsafe { Arc::increment_strong_count(self.shared_ptr()) };
        }
        Name {
            ptr: self.ptr,
            len: self.len,
        }
    }
}

impl Drop for Name {
    #[inline]
    fn drop(&mut self) {
        if !self.is_interned() {
            // SAFETY: gives back the count this name holds; the pointer is `Arc::into_raw`'s.
            unsafe { Arc::decrement_strong_count(self.shared_ptr()) };
        }
    }
}

impl Default for Name {
    fn default() -> Name {
        Name::from_static("")
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Name) -> bool {
        (self.ptr == other.ptr && self.len == other.len) || self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl Hash for Name {
    /// As the string hashes: a `Name` is looked up in maps by `&str` ([`Borrow`]).
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Deref for Name {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::from(Arc::<str>::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name::from(Arc::<str>::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::from(s.as_str())
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Name {
        let len = s.len();
        let ptr = Arc::into_raw(s) as *const u8 as *mut u8;
        Name {
            // SAFETY: `Arc::into_raw` never gives a null pointer.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            len,
        }
    }
}

impl From<&Name> for Name {
    fn from(s: &Name) -> Name {
        s.clone()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// How a name travels inside a block: the first time in full, then by its number.
#[derive(Serialize, Deserialize)]
enum Wire<'a> {
    New(&'a str),
    Ref(u32),
}

#[derive(Default)]
struct Encoder {
    ids: HashMap<Name, u32>,
}

#[derive(Default)]
struct Decoder {
    names: Vec<Name>,
}

thread_local! {
    static ENCODER: RefCell<Option<Encoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<Decoder>> = const { RefCell::new(None) };
}

/// The numbering of one block being written. Owned by the block builder between records.
#[derive(Default)]
pub struct EncodeTable(Option<Encoder>);

impl EncodeTable {
    /// How many names the table has numbered.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |e| e.ids.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the names numbered from `n` on (a record that failed to encode added them).
    pub fn truncate(&mut self, n: usize) {
        if let Some(e) = self.0.as_mut() {
            e.ids.retain(|_, id| (*id as usize) < n);
        }
    }
}

/// Runs `f` (which serializes records) with `table`'s numbering; names new to the table are
/// added to it.
pub fn with_encoder<R>(table: &mut EncodeTable, f: impl FnOnce() -> R) -> R {
    /// Puts the numbering back into its table even if `f` panics.
    struct Restore<'a>(&'a mut EncodeTable);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0 .0 = ENCODER.with(|c| c.borrow_mut().take());
        }
    }
    let enc = table.0.take().unwrap_or_default();
    ENCODER.with(|c| *c.borrow_mut() = Some(enc));
    let _restore = Restore(table);
    f()
}

/// Runs `f` (which deserializes the records of one block) with a fresh numbering.
pub fn with_decoder<R>(f: impl FnOnce() -> R) -> R {
    with_names(&mut Vec::new(), f)
}

/// Runs `f` (which deserializes records of one block with serde) with the block's numbering so
/// far, `names`; the names `f` defines are added to it. The capture codec decodes the frequent
/// records itself and hands the others to serde through this, sharing one numbering.
pub(crate) fn with_names<R>(names: &mut Vec<Name>, f: impl FnOnce() -> R) -> R {
    /// Puts the numbering back even if `f` panics, so it never leaks into another block.
    struct Back<'a>(&'a mut Vec<Name>);
    impl Drop for Back<'_> {
        fn drop(&mut self) {
            *self.0 = DECODER
                .with(|c| c.borrow_mut().take())
                .map(|d| d.names)
                .unwrap_or_default();
        }
    }
    let taken = std::mem::take(names);
    DECODER.with(|c| *c.borrow_mut() = Some(Decoder { names: taken }));
    let _back = Back(names);
    f()
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(self.as_str());
        }
        let id = ENCODER.with(|c| {
            let mut c = c.borrow_mut();
            let enc = c.as_mut()?;
            if let Some(&id) = enc.ids.get(self) {
                return Some(Some(id));
            }
            let next = enc.ids.len() as u32;
            enc.ids.insert(self.clone(), next);
            Some(None)
        });
        match id {
            Some(Some(id)) => Wire::Ref(id).serialize(s),
            _ => Wire::New(self.as_str()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        if d.is_human_readable() {
            return String::deserialize(d).map(Name::from);
        }
        match Wire::deserialize(d)? {
            Wire::New(s) => {
                let name = Name::interned(s);
                DECODER.with(|c| {
                    if let Some(dec) = c.borrow_mut().as_mut() {
                        dec.names.push(name.clone());
                    }
                });
                Ok(name)
            }
            Wire::Ref(id) => DECODER
                .with(|c| {
                    c.borrow()
                        .as_ref()
                        .and_then(|dec| dec.names.get(id as usize).cloned())
                })
                .ok_or_else(|| {
                    D::Error::custom(format!("name reference {id} before its definition"))
                }),
        }
    }
}

/// A [`Name`] written as a plain string in every format, never by number: for values that were
/// `String`s when the capture format was fixed (span names, attribute values). The capture
/// decoder shares their memory within a block all the same.
pub(crate) mod plain {
    use super::Name;
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(name: &Name, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        struct Text;
        impl de::Visitor<'_> for Text {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name, E> {
                Ok(Name::from(v))
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_and_shared_names_are_the_same_strings() {
        let a = Name::interned("/kubepods/burstable/pod-a/c1");
        let b = Name::interned(&String::from("/kubepods/burstable/pod-a/c1"));
        let c = Name::from("/kubepods/burstable/pod-a/c1");
        assert!(a.is_interned() && !c.is_interned());
        // One copy of the text, whoever asks.
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(a, c);
        assert_eq!(c, a);
        assert_eq!(a.cmp(&c), std::cmp::Ordering::Equal);
        let (java, sh) = (Name::interned("java"), Name::from("sh"));
        assert!(java < sh);
        // Found in a map by its text, whichever kind it is.
        let set: HashSet<Name> = [a.clone(), Name::from("sh")].into_iter().collect();
        assert!(set.contains("/kubepods/burstable/pod-a/c1") && set.contains(&c));
        assert!(set.contains(&Name::interned("sh")));
        assert_eq!(format!("{a} {a:?}"), format!("{c} {c:?}"));
        assert_eq!(Name::default(), "");
        assert_eq!(Name::interned(""), Name::from(""));
        // Too long to keep: shared instead.
        let long = "x".repeat(INTERN_MAX + 1);
        assert!(!Name::interned(&long).is_interned());
        assert_eq!(Name::interned(&long), long.as_str());
    }

    #[test]
    fn a_shared_name_keeps_its_count_across_clones_and_threads() {
        let arc: Arc<str> = Arc::from("checkout");
        let name = Name::from(arc.clone());
        assert_eq!(Arc::strong_count(&arc), 2);
        let copies: Vec<Name> = (0..10).map(|_| name.clone()).collect();
        assert_eq!(Arc::strong_count(&arc), 12);
        let joined = std::thread::spawn(move || {
            let n = copies.len();
            drop(copies);
            n
        });
        assert_eq!(joined.join().unwrap(), 10);
        assert_eq!(Arc::strong_count(&arc), 2);
        drop(name);
        assert_eq!(Arc::strong_count(&arc), 1);
        // An interned name has no count to keep: copies are free and outlive nothing.
        let i = Name::interned("checkout");
        let copy = i.clone();
        drop(i);
        assert_eq!(copy, "checkout");
    }

    #[test]
    fn the_pool_stops_at_its_budget() {
        let mut pool = Pool::new(2 * POOL_CHUNK + 200 * ENTRY_COST);
        let text = |i: usize| format!("{i:01000}");
        // 65 strings of 1,000 bytes fill a chunk; the budget has room for two chunks.
        let kept = (0..200).filter(|&i| pool.get(&text(i)).is_some()).count();
        assert_eq!(kept, 130);
        assert_eq!(pool.used, 2 * POOL_CHUNK + 130 * ENTRY_COST);
        // What was kept is still found; what was not is still refused.
        assert_eq!(pool.get(&text(0)), Some(text(0).as_str()));
        assert_eq!(pool.get(&text(199)), None);
        // Many short strings are bounded by what each costs in the set, not by their text.
        let mut pool = Pool::new(POOL_CHUNK + 1000 * ENTRY_COST);
        let kept = (0..10_000)
            .filter(|i| pool.get(&i.to_string()).is_some())
            .count();
        assert_eq!(kept, 1000);
    }

    #[test]
    fn repeated_names_travel_once_per_block() {
        let names: Vec<Name> = [
            "/kubepods/pod1/c1",
            "java",
            "/kubepods/pod1/c1",
            "java",
            "sh",
        ]
        .into_iter()
        .map(Name::from)
        .collect();
        let mut table = EncodeTable::default();
        let bytes = with_encoder(&mut table, || postcard::to_stdvec(&names).unwrap());
        let plain =
            postcard::to_stdvec(&names.iter().map(|n| n.as_str()).collect::<Vec<_>>()).unwrap();
        assert!(
            bytes.len() + 12 < plain.len(),
            "{} vs {}",
            bytes.len(),
            plain.len()
        );
        let back: Vec<Name> = with_decoder(|| postcard::from_bytes(&bytes).unwrap());
        assert_eq!(back, names);
        // A reference outside its block is an error, not a wrong value.
        let refs = postcard::to_stdvec(&(Wire::Ref(0),)).unwrap();
        assert!(with_decoder(|| postcard::from_bytes::<(Name,)>(&refs)).is_err());
        assert_eq!(serde_json::to_string(&names[1]).unwrap(), "\"java\"");
    }
}
