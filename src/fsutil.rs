//! Durable file replacement, used by every writer that must not leave a half-written file
//! behind (snapshots, signing keys and the keyring, scan history metadata, metrics textfiles),
//! and bounded reading, used by every reader of a file a user names (`/dev/zero` or a huge
//! file is an error at the bound, never an unbounded allocation).

use std::io::Write;
use std::path::Path;

/// Replace `path` with `bytes` atomically and durably: write a temporary file beside it (with
/// Unix `mode` when given, e.g. `0o600` for secrets), fsync it, rename it over `path`, then
/// fsync the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(m);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Bound for a certificate file handed to the CLI (the format allows 16 KiB; the scanner
/// accepts up to 64 KiB before calling a body malformed).
pub const MAX_CERT_FILE: u64 = 64 * 1024;
/// Bound for a page handed to `beian extract`.
pub const MAX_PAGE_FILE: u64 = 16 * 1024 * 1024;
/// Bound for a configuration, policy, keyring or metadata file.
pub const MAX_TEXT_FILE: u64 = 4 * 1024 * 1024;
/// Bound for a registry snapshot (about 5 million filings fit).
pub const MAX_SNAPSHOT_FILE: u64 = 8 * 1024 * 1024 * 1024;
/// Longest line of a targets file.
pub const MAX_TARGET_LINE: usize = 8 * 1024;

/// Read all of `path`, refusing anything longer than `max` bytes with an
/// [`std::io::ErrorKind::InvalidData`] error that names the bound. Reads at most `max + 1`
/// bytes, so special files such as `/dev/zero` stop at the bound.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let hint = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len().min(max));
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_string(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, max)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to() + 1
            ),
        )
    })
}

fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the limit of {max} bytes"),
    )
}

/// What [`read_line_bounded`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A whole line is in the buffer.
    Line,
    /// The line was longer than the bound; the buffer is empty.
    TooLong,
}

/// What to do with the rest of a line longer than the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongLine {
    /// Consume it to its newline, so the next call reads the next line (files of records,
    /// where one bad line must not stop the others).
    Skip,
    /// Leave it: reading stops at the bound (input that may never end a line, such as
    /// `/dev/zero`).
    Stop,
}

/// Read one `\n`-terminated line into `buf` (without the `\n` or a trailing `\r`),
/// keeping at most `max` bytes of it. `None` at the end of input. The one bounded line reader:
/// imports, target lists and JSON Lines files all read through it.
pub fn read_line_bounded(
    reader: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    long: LongLine,
) -> std::io::Result<Option<LineRead>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(p) => (&available[..p], Some(p + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() || (too_long && long == LongLine::Stop) {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if too_long {
        return Ok(Some(LineRead::TooLong));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(LineRead::Line))
}

/// Lines of a reader, each at most `max` bytes (a longer line is an error naming its line
/// number, and iteration stops at the bound). Invalid UTF-8 is replaced.
pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    line: u64,
    done: bool,
}

impl<R: std::io::BufRead> BoundedLines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        BoundedLines {
            reader,
            max,
            line: 0,
            done: false,
        }
    }
}

impl<R: std::io::BufRead> Iterator for BoundedLines<R> {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.line += 1;
        let mut buf = Vec::new();
        match read_line_bounded(&mut self.reader, &mut buf, self.max, LongLine::Stop) {
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some(LineRead::Line)) => Some(Ok(String::from_utf8_lossy(&buf).into_owned())),
            Ok(Some(LineRead::TooLong)) => {
                self.done = true;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {}: longer than {} bytes", self.line, self.max),
                )))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one", None).unwrap();
        write_atomic(&p, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!dir.path().join("a.tmp").exists());
    }

    #[test]
    fn reads_stop_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        let e = read_bounded(&p, 4).unwrap_err();
        assert!(e.to_string().contains("limit of 4 bytes"), "{e}");
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn bounded_lines() {
        let text = b"a\r\nbb\n\nccc";
        let lines: Vec<String> = BoundedLines::new(&text[..], 3)
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(lines, ["a", "bb", "", "ccc"]);
        let mut it = BoundedLines::new(&b"ok\ntoolong\nx\n"[..], 3);
        assert_eq!(it.next().unwrap().unwrap(), "ok");
        let e = it.next().unwrap().unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(it.next().is_none());
        #[cfg(unix)]
        {
            let f = std::fs::File::open("/dev/zero").unwrap();
            let mut it = BoundedLines::new(std::io::BufReader::new(f), 1024);
            assert!(it.next().unwrap().is_err());
        }
    }
}
