//! CSV records from raw bytes, line by line, so that one bad line costs one
//! row and never the rest of the file.
//!
//! Why not `csv::Reader` over a decoding stream: an unbalanced quote there
//! swallows every following line into one field, bytes that are not valid
//! in the file's encoding are silently replaced, and its line numbers count
//! a CRLF export one line short. Here each physical line is decoded on its
//! own (a bad byte rejects that line, with a hint at the encoding), split
//! into fields by `csv_core`, and numbered by us. A quoted field may span
//! lines (an address with a line break), but only while the record it makes
//! is good: when such a record has the wrong number of fields, fails to
//! parse, or grows past [`MAX_RECORD_LINES`], its first line is rejected as
//! an unbalanced quote and the lines after it are read again as rows of
//! their own.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

/// A physical line longer than this is rejected (and skipped, not held).
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;
/// A quoted field may span at most this many lines.
pub(crate) const MAX_RECORD_LINES: usize = 100;
/// A single value longer than this rejects its row.
pub(crate) const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The text encodings a file may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    Other(&'static encoding_rs::Encoding),
}

impl TextEncoding {
    fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Other(e) => e.name(),
        }
    }
}

/// One physical line: its number (the first line of a file is 1) and its
/// text without the line break, or why it could not be decoded.
struct Line {
    no: u64,
    text: Result<String, LineError>,
}

/// Why a line cannot be read (the rejected row's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LineError {
    #[error("line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    /// Not valid UTF-8 at a byte (1-based); `gbk`: the bytes read as GBK.
    #[error("line is not valid {label} at byte {at} (0x{byte:02X}){}", if *.gbk { " (the bytes read as GBK/GB18030: if the export is in a Chinese encoding, set `encoding: gbk` or `gb18030` for this input in the mapping file)" } else { "" })]
    NotUtf8 {
        label: &'static str,
        at: usize,
        byte: u8,
        gbk: bool,
    },
    #[error("line is not valid {0}")]
    NotIn(&'static str),
}

/// A file whose bytes do not match the encoding it is read with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingMismatch {
    #[error("the file is UTF-16; save it as UTF-8 (in Excel: CSV UTF-8) or GB18030")]
    Utf16,
    #[error("the file is not UTF-8 but reads as GBK/GB18030: set `encoding: gbk` (or `gb18030`) for this input in the mapping file")]
    GbkNotUtf8,
    #[error("the mapping says the file is {0}, but it is UTF-8: remove `encoding` for this input from the mapping file (or set `encoding: utf8`)")]
    Utf8Not(&'static str),
}

/// What [`RecordReader::next_item`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A record: read its fields with [`RecordReader::field`]. `lines` is
    /// how many physical lines it spans (more than one only when a quoted
    /// field holds a line break).
    Record { line: u64, lines: usize },
    /// A line that is no record, with the reason.
    Rejected { line: u64, reason: String },
}

pub(crate) struct RecordReader<R: Read> {
    src: BufReader<R>,
    encoding: TextEncoding,
    core: csv_core::Reader,
    lines_read: u64,
    eof: bool,
    /// Lines to read again before reading more from the file.
    queue: VecDeque<Line>,
    /// The lines of the record last returned.
    current: Vec<Line>,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    raw: Vec<u8>,
    /// Strip a byte-order mark from line 1: off for a part of a file that
    /// starts past its beginning.
    strip_bom: bool,
    /// The input ended inside a quoted value (a part of a file cut there
    /// did not start and end on record boundaries).
    ended_in_quote: bool,
}

impl<R: Read> RecordReader<R> {
    pub fn new(src: R, encoding: TextEncoding, delimiter: u8) -> Self {
        // `field` relies on it: a field cut at a non-ASCII byte could end
        // inside a character (the mapping allows ASCII delimiters only).
        assert!(delimiter.is_ascii(), "a CSV delimiter is one ASCII byte");
        let core = csv_core::ReaderBuilder::new()
            .delimiter(delimiter)
            .terminator(csv_core::Terminator::Any(b'\n'))
            .build();
        RecordReader {
            src: BufReader::with_capacity(1 << 20, src),
            encoding,
            core,
            lines_read: 0,
            eof: false,
            queue: VecDeque::new(),
            current: Vec::new(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            raw: Vec::with_capacity(4096),
            strip_bom: true,
            ended_in_quote: false,
        }
    }

    /// For a part of a file that starts past its beginning: its line 1 is
    /// no file's first line, so a byte-order mark there is data.
    pub(crate) fn part(mut self) -> Self {
        self.strip_bom = false;
        self
    }

    /// Read and drop `n` physical lines (a title above the header row).
    pub(crate) fn skip(mut self, n: usize) -> Self {
        for _ in 0..n {
            if matches!(self.read_line(), Ok(None) | Err(_)) {
                break;
            }
        }
        self
    }

    /// The text of the first `n` physical lines (a title the mapping reads
    /// values from); a line that does not decode is empty.
    pub(crate) fn first_lines(mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match self.read_line() {
                Ok(Some(l)) => out.push(l.text.unwrap_or_default()),
                _ => break,
            }
        }
        out
    }

    /// Read and drop every line left; how many there were.
    pub(crate) fn drain(&mut self) -> std::io::Result<u64> {
        let mut n = 0;
        while self.read_line()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Physical lines read so far.
    pub(crate) fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// Whether the input ended inside a quoted value.
    pub(crate) fn ended_in_quote(&self) -> bool {
        self.ended_in_quote
    }

    /// The number of fields of the record last returned.
    pub fn len(&self) -> usize {
        self.ends_len
    }

    /// Field `i` of the record last returned.
    pub fn field(&self, i: usize) -> Option<&str> {
        if i >= self.ends_len {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let bytes = &self.out[start..self.ends[i]];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: every line fed to `core` is a `str` (`decode` gives
        // UTF-8 whatever the file's encoding, and the breaks between a
        // record's lines are `\n`). csv_core cuts fields at the delimiter,
        // ASCII (`new` asserts it), and drops or unescapes only ASCII
        // quotes; a UTF-8 character's bytes are never ASCII, so each field
        // is whole characters. Checked again per field, this was 6% of the
        // read's time at 10M rows.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Give up on the record last returned, which spanned several lines:
    /// reject its first line as an unbalanced quote and read the lines
    /// after it again as rows of their own.
    pub(crate) fn unwind(&mut self) -> Item {
        let mut lines = std::mem::take(&mut self.current).into_iter();
        let first = lines.next().map(|l| l.no).unwrap_or(0);
        for l in lines.rev() {
            self.queue.push_front(l);
        }
        self.core.reset();
        Item::Rejected {
            line: first,
            reason: "unbalanced quote: a quoted value opens on this line and is not closed where the row ends".into(),
        }
    }

    /// Read one physical line (bounded in length) and decode it.
    fn read_line(&mut self) -> std::io::Result<Option<Line>> {
        if let Some(l) = self.queue.pop_front() {
            return Ok(Some(l));
        }
        if self.eof {
            return Ok(None);
        }
        self.raw.clear();
        let mut too_long = false;
        loop {
            let buf = self.src.fill_buf()?;
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            let (chunk, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = chunk.len();
            if !too_long {
                if self.raw.len() + n > MAX_LINE_BYTES {
                    too_long = true;
                    self.raw.clear();
                } else {
                    self.raw.extend_from_slice(chunk);
                }
            }
            self.src.consume(n);
            if found {
                break;
            }
        }
        if self.raw.is_empty() && self.eof && !too_long {
            return Ok(None);
        }
        self.lines_read += 1;
        let no = self.lines_read;
        if too_long {
            return Ok(Some(Line {
                no,
                text: Err(LineError::TooLong),
            }));
        }
        let mut bytes: &[u8] = &self.raw;
        if let Some(b) = bytes.strip_suffix(b"\n") {
            bytes = b;
        }
        if let Some(b) = bytes.strip_suffix(b"\r") {
            bytes = b;
        }
        if no == 1 && self.strip_bom {
            if let Some(b) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = b;
            }
        }
        Ok(Some(Line {
            no,
            text: decode(bytes, self.encoding),
        }))
    }

    /// Feed one line (with its line break added back) to the CSV state
    /// machine; true when a record is complete.
    fn feed(&mut self, text: &str) -> bool {
        // An empty slice means "end of input" to csv_core: never feed one.
        (!text.is_empty() && self.feed_bytes(text.as_bytes())) || self.feed_bytes(b"\n")
    }

    fn feed_bytes(&mut self, mut input: &[u8]) -> bool {
        loop {
            let (res, nin, nout, nend) = self
                .core
                .read_record(input, &mut self.out[self.out_len..], &mut self.ends[self.ends_len..]);
            input = &input[nin..];
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => return false,
                csv_core::ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                csv_core::ReadRecordResult::Record => return true,
            }
        }
    }

    /// The next record or rejected line; `None` at the end of the file.
    /// Blank lines are not rows and are passed over.
    pub(crate) fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        self.current.clear();
        loop {
            let Some(line) = self.read_line()? else { return Ok(None) };
            let text = match &line.text {
                Err(reason) => {
                    return Ok(Some(Item::Rejected {
                        line: line.no,
                        reason: reason.to_string(),
                    }))
                }
                Ok(t) if t.is_empty() => continue,
                Ok(t) => t,
            };
            self.out_len = 0;
            self.ends_len = 0;
            let start = line.no;
            let mut bytes = text.len();
            // Fed before it is kept: the line's text is not copied.
            let mut complete = self.feed(text);
            self.current.push(line);
            while !complete {
                // Inside a quoted value at the end of a line: the value
                // goes on, if the next line lets it.
                if self.current.len() >= MAX_RECORD_LINES || bytes > MAX_LINE_BYTES {
                    return Ok(Some(self.unwind()));
                }
                let Some(next) = self.read_line()? else {
                    self.ended_in_quote = true;
                    if self.current.len() > 1 {
                        return Ok(Some(self.unwind()));
                    }
                    self.core.reset();
                    return Ok(Some(Item::Rejected {
                        line: start,
                        reason: "unbalanced quote: a quoted value is not closed before the end of the file".into(),
                    }));
                };
                let t = match &next.text {
                    Ok(t) => t,
                    Err(_) => {
                        self.current.push(next);
                        return Ok(Some(self.unwind()));
                    }
                };
                bytes += t.len() + 1;
                // The line break inside the quoted value is kept as `\n`.
                complete = self.feed(t);
                self.current.push(next);
            }
            if let Some(long) = (0..self.ends_len).find(|i| {
                let s = if *i == 0 { 0 } else { self.ends[i - 1] };
                self.ends[*i] - s > MAX_FIELD_BYTES
            }) {
                if self.current.len() > 1 {
                    return Ok(Some(self.unwind()));
                }
                return Ok(Some(Item::Rejected {
                    line: start,
                    reason: format!("value {} is longer than {} bytes", long + 1, MAX_FIELD_BYTES),
                }));
            }
            return Ok(Some(Item::Record {
                line: start,
                lines: self.current.len(),
            }));
        }
    }
}

/// Decode one line strictly: a byte sequence that is not valid in the
/// encoding is a reason to reject the line, never a replacement character.
fn decode(bytes: &[u8], encoding: TextEncoding) -> Result<String, LineError> {
    match encoding {
        TextEncoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(LineError::NotUtf8 {
                label: encoding.label(),
                at: e.valid_up_to() + 1,
                byte: bytes[e.valid_up_to()],
                gbk: encoding_rs::GB18030
                    .decode_without_bom_handling_and_without_replacement(bytes)
                    .is_some(),
            }),
        },
        TextEncoding::Other(enc) => enc
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|c| c.into_owned())
            .ok_or(LineError::NotIn(encoding.label())),
    }
}

/// Look at the start of a file for a mismatch between its bytes and the
/// encoding it is read with, so a wrong setting stops the run with advice
/// instead of garbling every value. Returns the advice.
pub(crate) fn sniff(head: &[u8], encoding: TextEncoding) -> Result<(), EncodingMismatch> {
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(EncodingMismatch::Utf16);
    }
    let utf8_bom = head.starts_with(b"\xEF\xBB\xBF");
    // A cut in the middle of a character at the end of the sample is fine.
    let valid_utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let non_ascii = head.iter().any(|b| *b >= 0x80);
    match encoding {
        TextEncoding::Utf8 => {
            if !valid_utf8 && !utf8_bom {
                let gb = encoding_rs::GB18030
                    .decode_without_bom_handling_and_without_replacement(trim_partial(head))
                    .is_some();
                if gb {
                    return Err(EncodingMismatch::GbkNotUtf8);
                }
            }
            Ok(())
        }
        TextEncoding::Other(enc) => {
            if utf8_bom || (valid_utf8 && non_ascii) {
                return Err(EncodingMismatch::Utf8Not(enc.name()));
            }
            Ok(())
        }
    }
}

/// Drop a trailing partial line so a sample cut mid-character still decodes.
fn trim_partial(head: &[u8]) -> &[u8] {
    match head.iter().rposition(|b| *b == b'\n') {
        Some(i) => &head[..=i],
        None => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<(Item, Vec<String>)> {
        let mut r = RecordReader::new(bytes, TextEncoding::Utf8, b',');
        let mut v = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            let fields = (0..r.len()).map(|i| r.field(i).unwrap().to_string()).collect();
            let fields = if matches!(item, Item::Record { .. }) { fields } else { vec![] };
            v.push((item, fields));
        }
        v
    }

    #[test]
    fn crlf_lines_are_numbered_like_lf() {
        let lf = all(b"a,b\n1,2\n3,4\n");
        let crlf = all(b"a,b\r\n1,2\r\n3,4\r\n");
        assert_eq!(lf, crlf);
        assert_eq!(crlf[2].0, Item::Record { line: 3, lines: 1 });
        assert_eq!(crlf[2].1, vec!["3", "4"]);
    }

    #[test]
    fn an_unbalanced_quote_costs_one_line() {
        let v = all(b"a,b\n1,\"x\n3,4\n5,6");
        assert_eq!(v.len(), 4);
        // The quote opened on line 2 runs to the end of the file.
        assert!(matches!(v[1].0, Item::Rejected { line: 2, .. }));
        let lines: Vec<u64> = v
            .iter()
            .map(|(i, _)| match i {
                Item::Record { line, .. } | Item::Rejected { line, .. } => *line,
            })
            .collect();
        assert_eq!(lines, vec![1, 2, 3, 4]);
        assert_eq!(v[2].1, vec!["3", "4"]);
        assert_eq!(v[3].1, vec!["5", "6"]);
    }

    #[test]
    fn a_quoted_line_break_is_one_record_and_unwinds_on_request() {
        let mut r = RecordReader::new(&b"a,b\n\"x\ny\",2\n3,4\n"[..], TextEncoding::Utf8, b',');
        assert_eq!(r.next_item().unwrap(), Some(Item::Record { line: 1, lines: 1 }));
        assert_eq!(r.next_item().unwrap(), Some(Item::Record { line: 2, lines: 2 }));
        assert_eq!(r.field(0), Some("x\ny"));
        assert_eq!(r.field(1), Some("2"));
        assert!(matches!(r.unwind(), Item::Rejected { line: 2, .. }));
        // Line 3 (`y",2`) is read again as a row of its own.
        assert_eq!(r.next_item().unwrap(), Some(Item::Record { line: 3, lines: 1 }));
        assert_eq!(r.field(0), Some("y\""));
        assert_eq!(r.next_item().unwrap(), Some(Item::Record { line: 4, lines: 1 }));
        assert_eq!(r.next_item().unwrap(), None);
    }

    #[test]
    fn bad_bytes_reject_the_line_with_a_hint() {
        let v = all(b"a,b\nSN\xc3(123,2\n3,4\n");
        match &v[1].0 {
            Item::Rejected { line: 2, reason } => assert!(reason.contains("not valid UTF-8"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(v[2].1, vec!["3", "4"]);
    }

    #[test]
    fn fields_are_split_and_unquoted() {
        let v = all(b"\xEF\xBB\xBFa,b,c\n\"x,y\",\"say \"\"hi\"\"\",\n\n7,8,9");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].1, vec!["a", "b", "c"]);
        assert_eq!(v[1].1, vec!["x,y", "say \"hi\"", ""]);
        assert_eq!(v[2].0, Item::Record { line: 4, lines: 1 });
    }

    #[test]
    fn long_values_and_lines_are_bounded() {
        let mut big = b"a\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES + 1));
        big.extend(b"\n1\n");
        let v = all(&big);
        assert!(matches!(&v[1].0, Item::Rejected { line: 2, reason } if reason.contains("longer")));
        assert_eq!(v[2].1, vec!["1"]);
        let mut huge = b"a\n".to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        huge.extend(b"\n1\n");
        let v = all(&huge);
        assert!(matches!(&v[1].0, Item::Rejected { line: 2, reason } if reason.contains("line is longer")));
        assert_eq!(v[2].0, Item::Record { line: 3, lines: 1 });
    }

    #[test]
    fn sniffing_catches_wrong_encodings() {
        let gbk = encoding_rs::GBK.encode("商户编号,交易金额\n").0.into_owned();
        assert!(sniff(&gbk, TextEncoding::Utf8).unwrap_err().to_string().contains("gbk"));
        assert!(sniff("商户编号\n".as_bytes(), TextEncoding::Other(encoding_rs::GBK))
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        assert!(sniff(&gbk, TextEncoding::Other(encoding_rs::GBK)).is_ok());
        assert!(sniff(b"\xFF\xFEa\0", TextEncoding::Utf8)
            .unwrap_err()
            .to_string()
            .contains("UTF-16"));
        assert!(sniff(b"a,b\n1,2\n", TextEncoding::Utf8).is_ok());
    }
}
