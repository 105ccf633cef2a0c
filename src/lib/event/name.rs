//! [`Name`]: a shared string for values that repeat from event to event.
//!
//! Node names, process names, executable paths and cgroup paths repeat in almost every kernel
//! event; attribute keys and service names in every span. In memory they are shared (`Arc<str>`);
//! in a capture block each distinct value is written once and then referred to by number. That
//! halves the decoder's work: far fewer bytes to decompress and no allocation per event.
//!
//! The numbering lives in a table that the capture codec installs for the duration of one block
//! ([`with_encoder`], [`with_decoder`]). Outside a block (JSON, or postcard without the codec),
//! a `Name` is a plain string.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable, cheaply cloned string.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name(Arc::from(s.as_str()))
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Name {
        Name(s)
    }
}

impl From<&Name> for Name {
    fn from(s: &Name) -> Name {
        s.clone()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
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
            return s.serialize_str(&self.0);
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
            _ => Wire::New(&self.0).serialize(s),
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
                let name = Name::from(s);
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
