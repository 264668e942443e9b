//! Segment files: their names, listing them, and reading them batch by batch through a large
//! buffer (one `pread` per half mebibyte, not one per record).
//!
//! ```text
//!  file:   | batch | batch | batch | batch | partial...  EOF
//!  buffer:         [start ............ start+len)
//!                  one read_at fills it; batch_at(pos) parses in place
//! ```

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::{parse_batch, parse_header, BatchHeader, Parsed, HEADER_LEN, MAGIC};
use crate::error::LogError;

/// How much a reader asks the OS for at a time.
pub(crate) const READ_CHUNK: usize = 512 * 1024;

/// The file name of the segment whose first offset is `base`: 20 digits, like Kafka.
pub(crate) fn log_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The file name of the sparse index of the segment whose first offset is `base`.
pub(crate) fn index_name(base: u64) -> String {
    format!("{base:020}.index")
}

/// The base offset named by a segment file name, if `name` is one.
fn parse_log_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The base offsets of the segments in a partition directory, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LogError::io(format!("listing segments in {}", dir.display()), e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| LogError::io(format!("listing segments in {}", dir.display()), e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_log_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Reads at `pos` without moving any file cursor (so readers can share nothing).
#[cfg(unix)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

/// Reads at `pos` (Windows moves the cursor, which nothing here relies on).
#[cfg(windows)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match read_at(file, &mut buf[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// What a segment holds at one byte position.
#[derive(Debug)]
pub(crate) enum At {
    /// A complete batch with matching CRCs; its payload is [`SegmentReader::payload`].
    Batch(BatchHeader),
    /// The file ends exactly here.
    End,
    /// The file ends inside the batch that starts here (its header or its payload).
    Incomplete,
    /// The header here is wrong.
    BadHeader(String),
    /// The header is valid and the payload complete, but the payload CRC does not match.
    BadPayload(BatchHeader, String),
}

/// A segment file opened for reading, with a buffer of its bytes.
pub(crate) struct SegmentReader {
    path: PathBuf,
    file: File,
    /// `buf[..len]` holds the file's bytes from `start` on; the rest is room for the next
    /// read. The room is zeroed once, when the buffer grows, not before every read: zeroing
    /// half a mebibyte per read was 3.5% of a verify.
    buf: Vec<u8>,
    /// How many bytes of `buf` hold file bytes.
    len: usize,
    /// File position of `buf[0]`.
    start: u64,
}

impl SegmentReader {
    /// Opens the segment at `path` read-only.
    pub fn open(path: PathBuf) -> Result<Self, LogError> {
        let file = File::open(&path)
            .map_err(|e| LogError::io(format!("opening segment {}", path.display()), e))?;
        Ok(SegmentReader {
            path,
            file,
            buf: Vec::new(),
            len: 0,
            start: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads and checks the batch at byte `pos`, reading more of the file as needed. Bytes
    /// that do not form a complete valid batch are dropped from the buffer, so that a later
    /// call sees what the file holds then (the tail may grow, or be cut by recovery).
    pub fn batch_at(&mut self, pos: u64) -> Result<At, LogError> {
        self.move_to(pos);
        loop {
            let have = &self.buf[(pos - self.start) as usize..self.len];
            let needed = match parse_batch(have) {
                Parsed::Batch(h) => return Ok(At::Batch(h)),
                Parsed::BadHeader(detail) => {
                    self.forget_from(pos);
                    return Ok(At::BadHeader(detail));
                }
                Parsed::BadPayload(h, detail) => {
                    self.forget_from(pos);
                    return Ok(At::BadPayload(h, detail));
                }
                Parsed::Incomplete { needed } => needed,
            };
            let had = have.len() as u64;
            if self.fill(pos, needed - had)? == 0 {
                self.forget_from(pos);
                return Ok(if had == 0 { At::End } else { At::Incomplete });
            }
        }
    }

    /// The payload of the batch `h` that [`batch_at`](Self::batch_at)`(pos)` just returned.
    pub fn payload(&self, pos: u64, h: &BatchHeader) -> &[u8] {
        let from = (pos - self.start) as usize + HEADER_LEN;
        &self.buf[from..from + h.payload_len as usize]
    }

    /// Makes the buffer start at or before `pos` and reach at least `pos`.
    fn move_to(&mut self, pos: u64) {
        if pos < self.start || pos > self.start + self.len as u64 {
            self.len = 0;
            self.start = pos;
        }
    }

    fn forget_from(&mut self, pos: u64) {
        self.len = (pos - self.start) as usize;
    }

    /// Reads at least `want` more bytes if the file has them (in one large read when it can);
    /// returns how many bytes were added. `pos` is the batch being parsed: the bytes before
    /// it are no longer needed, so when the room after the buffered bytes is short, the
    /// bytes from `pos` on (a part of one batch) move to the front, instead of the buffer
    /// moving its whole contents at every half mebibyte read.
    fn fill(&mut self, pos: u64, want: u64) -> Result<usize, LogError> {
        let end = self.start + self.len as u64;
        let len = self
            .file
            .metadata()
            .map_err(|e| LogError::io(format!("reading {}", self.path.display()), e))?
            .len();
        let available = len.saturating_sub(end);
        let n = want.max(READ_CHUNK as u64).min(available) as usize;
        if n == 0 {
            return Ok(0);
        }
        if self.buf.len() - self.len < n {
            let keep = (pos - self.start) as usize;
            self.buf.copy_within(keep..self.len, 0);
            self.len -= keep;
            self.start = pos;
            if self.buf.len() > 16 * READ_CHUNK && self.len + n <= 2 * READ_CHUNK {
                // A huge batch went by: give the memory back.
                self.buf.truncate(2 * READ_CHUNK);
                self.buf.shrink_to_fit();
            }
            if self.buf.len() - self.len < n {
                self.buf.resize(self.len + n, 0);
            }
        }
        let old = self.len;
        let got = read_full_at(&self.file, &mut self.buf[old..old + n], end)
            .map_err(|e| LogError::io(format!("reading {}", self.path.display()), e))?;
        self.len = old + got;
        Ok(got)
    }
}

/// The valid batch header at byte `pos` of `file`, if there is one (reads only the header).
pub(crate) fn header_at(file: &File, pos: u64) -> io::Result<Option<BatchHeader>> {
    let mut h = [0u8; HEADER_LEN];
    let n = read_full_at(file, &mut h, pos)?;
    Ok(parse_header(&h[..n]).ok())
}

/// Finds the first complete batch with matching CRCs that starts at or after byte `from` of
/// `file`, scanning for the magic at every byte position. Used only to decide whether a bad
/// batch is a torn tail (nothing valid after it) or corruption (valid data after it).
pub(crate) fn find_valid_batch(file: &File, from: u64) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    let mut window = vec![0u8; READ_CHUNK + HEADER_LEN];
    let mut pos = from;
    while pos + HEADER_LEN as u64 <= len {
        let want = window.len().min((len - pos) as usize);
        let n = read_full_at(file, &mut window[..want], pos)?;
        if n < HEADER_LEN {
            break;
        }
        for i in 0..=n - HEADER_LEN {
            if window[i..i + 4] != MAGIC {
                continue;
            }
            let Ok(h) = parse_header(&window[i..n]) else {
                continue;
            };
            let at = pos + i as u64;
            if at + h.batch_len() <= len && payload_crc_matches(file, at, &h)? {
                return Ok(Some(at));
            }
        }
        // The next window starts right after the last candidate position of this one.
        pos += (n - HEADER_LEN + 1) as u64;
    }
    Ok(None)
}

/// Checks the payload CRC of the batch `h` at `at`, streaming it in chunks.
fn payload_crc_matches(file: &File, at: u64, h: &BatchHeader) -> io::Result<bool> {
    let mut chunk = vec![0u8; READ_CHUNK.min(h.payload_len as usize)];
    let mut crc = 0;
    let mut pos = at + HEADER_LEN as u64;
    let end = at + h.batch_len();
    while pos < end {
        let want = chunk.len().min((end - pos) as usize);
        let n = read_full_at(file, &mut chunk[..want], pos)?;
        if n < want {
            return Ok(false);
        }
        crc = crc32c::crc32c_append(crc, &chunk[..n]);
        pos += n as u64;
    }
    Ok(crc == h.payload_crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment of `sizes.len()` batches, batch `i` one record with a value of `sizes[i]`
    /// bytes of `i`; the batches' bytes and headers.
    fn segment(sizes: &[usize]) -> (Vec<u8>, Vec<BatchHeader>) {
        let (mut file, mut headers, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &size) in sizes.iter().enumerate() {
            let record = crate::api::Record {
                key: None,
                value: Some(vec![i as u8; size]),
                headers: Vec::new(),
                timestamp_ms: 0,
            };
            let base = headers.len() as u64;
            let h = super::super::batch::encode_batch(&mut buf, base, &[record], 1 << 30)
                .expect("encodes");
            file.extend_from_slice(&buf);
            headers.push(h);
        }
        (file, headers)
    }

    /// Batches smaller and larger than a read, read in order while the file grows: every
    /// batch comes back whole, with its own bytes (the buffer moves the bytes it keeps to
    /// its front and grows for a batch larger than its room).
    #[test]
    fn batches_of_any_size_read_back_while_the_file_grows() {
        let sizes = [
            10,
            READ_CHUNK / 3,
            3 * READ_CHUNK,
            7,
            READ_CHUNK - 100,
            2 * READ_CHUNK,
            1,
        ];
        let (bytes, headers) = segment(&sizes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(log_name(0));
        // The file first holds the first four batches and half of the fifth.
        let first: u64 = headers[..4].iter().map(BatchHeader::batch_len).sum();
        let cut = first as usize + headers[4].batch_len() as usize / 2;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let mut seg = SegmentReader::open(path.clone()).unwrap();
        let mut pos = 0;
        for (i, h) in headers.iter().enumerate() {
            let got = match seg.batch_at(pos).unwrap() {
                At::Incomplete if i == 4 => {
                    std::fs::write(&path, &bytes).unwrap();
                    seg.batch_at(pos).unwrap()
                }
                got => got,
            };
            let At::Batch(got) = got else {
                panic!("batch {i}: {got:?}");
            };
            assert_eq!(got, *h, "batch {i}");
            let payload = seg.payload(pos, &got);
            assert_eq!(payload.len(), h.payload_len as usize);
            // The value fills the end of the payload (its one record's last field but the
            // empty header count).
            let value = &payload[payload.len() - 4 - sizes[i]..payload.len() - 4];
            assert!(value.iter().all(|&b| b == i as u8), "batch {i}'s bytes");
            pos += h.batch_len();
        }
        assert!(matches!(seg.batch_at(pos).unwrap(), At::End));
        // A batch read again after the file changed under the buffer: what the file holds
        // now, once the stale bytes are forgotten (a bad CRC drops them).
        let mut changed = bytes.clone();
        let last = bytes.len() - 1;
        changed[last] ^= 0xff;
        std::fs::write(&path, &changed).unwrap();
        let at = pos - headers[6].batch_len();
        assert!(matches!(seg.batch_at(at).unwrap(), At::Batch(_)));
        let back = at - headers[5].batch_len();
        assert!(matches!(seg.batch_at(back).unwrap(), At::Batch(_)));
        seg.forget_from(back);
        assert!(matches!(seg.batch_at(at).unwrap(), At::BadPayload(..)));
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(log_name(42), "00000000000000000042.log");
        assert_eq!(index_name(42), "00000000000000000042.index");
        assert_eq!(parse_log_name(&log_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_log_name("0000000000000000042.log"), None);
        assert_eq!(parse_log_name("+0000000000000000042.log"), None);
        assert_eq!(parse_log_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_name("99999999999999999999.log"), None);
    }
}
