//! Reading an input as text: gzip decompressed as a stream and capped, invalid UTF-8 replaced,
//! and a big file of a line format read a line at a time, never whole.
//!
//! Detection needs only the start of a file ([`HEAD_BYTES`]); the formats of one document (a
//! Kubernetes `List`, OTLP JSON) are then read whole, and the line formats (kernel and system
//! logs, journal JSON, container logs), which make the files of millions of lines, are parsed
//! from [`Lines`] as they are read.

use std::io::{BufRead, Read};
use std::path::Path;

/// The most a gzip input may decompress to: past it, it is a bomb (or a dump to split first).
pub const MAX_GUNZIPPED: u64 = 1 << 30;

/// How much of a file is read before its format is decided.
pub const HEAD_BYTES: usize = 1 << 20;

/// An input's text: all of it, or its start and the rest still to read.
pub enum Text {
    Whole(String),
    Stream {
        /// The first [`HEAD_BYTES`] or so, ending at a line's end.
        head: String,
        rest: Box<dyn BufRead>,
    },
}

impl Text {
    /// All of the text, read now.
    pub fn into_whole(self) -> Result<String, String> {
        match self {
            Text::Whole(s) => Ok(s),
            Text::Stream { head, mut rest } => {
                let mut bytes = head.into_bytes();
                rest.read_to_end(&mut bytes).map_err(read_error)?;
                Ok(utf8(bytes))
            }
        }
    }
}

/// Reads a file as UTF-8 text, decompressing gzip when the content is gzip (streamed, and at
/// most [`MAX_GUNZIPPED`]). Invalid UTF-8 is replaced, not fatal: logs often hold a stray byte.
pub fn read_text(path: &Path) -> Result<String, String> {
    read_text_capped(path, MAX_GUNZIPPED)
}

/// [`read_text`] with the decompressed size capped at `cap` bytes.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, String> {
    open_capped(path, cap, usize::MAX)?.into_whole()
}

/// Opens a file as text: whole when it is at most [`HEAD_BYTES`], else its start and the rest.
pub fn open(path: &Path) -> Result<Text, String> {
    open_capped(path, MAX_GUNZIPPED, HEAD_BYTES)
}

fn open_capped(path: &Path, cap: u64, head_bytes: usize) -> Result<Text, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut magic = [0u8; 2];
    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut reader: Box<dyn Read> = if gz {
        let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        Box::new(Capped {
            inner: gz,
            left: cap,
            cap,
        })
    } else {
        Box::new(file)
    };
    let mut head = Vec::new();
    let limit = u64::try_from(head_bytes).unwrap_or(u64::MAX);
    (&mut reader)
        .take(limit)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    if (head.len() as u64) < limit {
        return Ok(Text::Whole(utf8(head)));
    }
    // The head ends at a line's end; the rest of its last line is read with the rest.
    let cut = head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = head.split_off(cut);
    let rest = std::io::Cursor::new(tail).chain(reader);
    Ok(Text::Stream {
        head: utf8(head),
        rest: Box::new(std::io::BufReader::with_capacity(256 << 10, rest)),
    })
}

fn utf8(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn read_error(e: std::io::Error) -> String {
    // A gzip bomb says so itself.
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        return e.to_string();
    }
    format!("cannot read: {e}")
}

/// A reader that fails past `cap` bytes, saying so.
struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // At the cap: one more byte makes it a bomb.
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!(
                        "decompresses to more than {} MiB (a gzip bomb, or a dump to decompress and split first)",
                        self.cap >> 20
                    ),
                )),
            };
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

/// The lines of a text as they are read (without their `\n` or `\r\n`, invalid UTF-8 replaced),
/// first those of `head`. A read error ends them, and is kept in [`Lines::error`].
pub struct Lines<'a> {
    head: std::str::Lines<'a>,
    rest: Option<Box<dyn BufRead>>,
    buf: Vec<u8>,
    pub error: Option<String>,
}

impl<'a> Lines<'a> {
    pub fn new(head: &'a str, rest: Option<Box<dyn BufRead>>) -> Lines<'a> {
        Lines {
            head: head.lines(),
            rest,
            buf: Vec::new(),
            error: None,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = std::borrow::Cow<'a, str>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(l) = self.head.next() {
            return Some(std::borrow::Cow::Borrowed(l));
        }
        let rest = self.rest.as_mut()?;
        self.buf.clear();
        match rest.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.rest = None;
                None
            }
            Ok(_) => {
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                Some(std::borrow::Cow::Owned(
                    String::from_utf8_lossy(&self.buf).into_owned(),
                ))
            }
            Err(e) => {
                self.error = Some(read_error(e));
                self.rest = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_big_file_is_its_head_then_its_lines_as_read_and_equals_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..60_000 {
            text.push_str(&format!("[{i:>6}.000001] line {i} \u{e9}t\u{e9}\r\n"));
        }
        text.push_str("no newline at the end");
        for gz in [false, true] {
            let path = dir.path().join(if gz { "big.gz" } else { "big.txt" });
            if gz {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                enc.write_all(text.as_bytes()).unwrap();
                std::fs::write(&path, enc.finish().unwrap()).unwrap();
            } else {
                std::fs::write(&path, &text).unwrap();
            }
            let Text::Stream { head, rest } = open(&path).unwrap() else {
                panic!("{} MB read whole", text.len() >> 20)
            };
            assert!(head.len() <= HEAD_BYTES && head.ends_with('\n'));
            let mut lines = Lines::new(&head, Some(rest));
            let got: Vec<String> = lines.by_ref().map(|l| l.into_owned()).collect();
            assert!(lines.error.is_none());
            let want: Vec<&str> = text.lines().collect();
            assert_eq!(got, want);
            assert_eq!(read_text(&path).unwrap(), text);
        }
    }

    #[test]
    fn a_bomb_read_as_lines_ends_with_the_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dmesg.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for _ in 0..(3 << 20) / 32 {
            enc.write_all(b"[    1.000000] the same line...\n").unwrap();
        }
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        let Text::Stream { head, rest } = open_capped(&path, 2 << 20, 1 << 20).unwrap() else {
            panic!("read whole")
        };
        let mut lines = Lines::new(&head, Some(rest));
        let n = lines.by_ref().count();
        assert!(n < (3 << 20) / 32, "{n} lines");
        let err = lines.error.unwrap();
        assert!(err.contains("more than 2 MiB (a gzip bomb"), "{err}");
    }
}
