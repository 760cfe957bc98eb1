//! Newline-delimited JSON from any reader: a file or standard input.
//!
//! The reader thread only finds line ends: it hands each chunk over as one block of
//! whole lines, and the worker that takes the chunk splits it, checks UTF-8 and copies
//! out the lines. So per-line work runs on every core, and each line's text is
//! allocated and freed on the same thread.

use std::io::BufRead;
use std::sync::Arc;

use super::{Chunk, Receipt, Record, Records, Source};
use crate::event::Origin;

/// Reads lines, numbering them from 1; blank lines are skipped (but counted for numbering).
pub struct LineSource<R> {
    reader: R,
    name: Arc<str>,
    /// Lines read so far (the number of the last one).
    line: u64,
    ended: bool,
}

impl<R: BufRead + Send> LineSource<R> {
    /// Reads from `reader`, naming the input `name` in origins.
    pub fn new(reader: R, name: &str) -> Self {
        LineSource {
            reader,
            name: name.into(),
            line: 0,
            ended: false,
        }
    }

    /// The next block of up to `max` lines, `Ok(None)` at the end of the input.
    pub fn next_block(&mut self, max: usize) -> std::io::Result<Option<LineBlock>> {
        let first_line = self.line + 1;
        let mut bytes = Vec::new();
        let mut lines = 0;
        while lines < max && !self.ended {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                // A last line without a terminator still counts.
                self.ended = true;
                if bytes.last().is_some_and(|b| *b != b'\n') {
                    lines += 1;
                }
                break;
            }
            // Take the buffer up to the line end that completes the block, or all of it.
            let mut taken = buf.len();
            for end in memchr::memchr_iter(b'\n', buf) {
                lines += 1;
                if lines == max {
                    taken = end + 1;
                    break;
                }
            }
            bytes.extend_from_slice(&buf[..taken]);
            self.reader.consume(taken);
        }
        self.line += lines as u64;
        Ok((!bytes.is_empty()).then(|| LineBlock {
            bytes,
            name: self.name.clone(),
            first_line,
        }))
    }

    /// Appends up to `max` records to `out`; `Ok(false)` once the input is exhausted.
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<Record>) -> std::io::Result<bool> {
        let target = out.len() + max;
        while out.len() < target {
            match self.next_block(target - out.len())? {
                Some(block) => block.split_into(out),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

impl<R: BufRead + Send> Source for LineSource<R> {
    fn next_chunk(&mut self, max: usize) -> anyhow::Result<Option<Chunk>> {
        let block = self
            .next_block(max)
            .map_err(|e| anyhow::anyhow!("source: {}: read failed: {e}", self.name))?;
        Ok(block.map(|block| Chunk {
            records: Records::Lines(block),
            receipt: Receipt::none(),
        }))
    }
}

/// Whole input lines as read, not yet split: what the reader hands a worker.
#[derive(Debug)]
pub struct LineBlock {
    bytes: Vec<u8>,
    name: Arc<str>,
    first_line: u64,
}

impl LineBlock {
    /// Splits the block into records, numbering lines on from the block's first;
    /// terminators (`\n` and any `\r` before it) are cut and blank lines skipped.
    pub fn split_into(self, out: &mut Vec<Record>) {
        // A name of the block's own, so the per-line reference counts touch memory no
        // other worker does.
        let name: Arc<str> = Arc::from(&*self.name);
        let mut bytes = &self.bytes[..];
        let mut line = self.first_line;
        while !bytes.is_empty() {
            let (text, rest) = match memchr::memchr(b'\n', bytes) {
                Some(end) => (&bytes[..end], &bytes[end + 1..]),
                None => (bytes, &bytes[bytes.len()..]),
            };
            bytes = rest;
            let text = &text[..text.iter().rposition(|b| *b != b'\r').map_or(0, |i| i + 1)];
            if !text.iter().all(u8::is_ascii_whitespace) {
                out.push(Record::from_bytes(text, Origin::line(name.clone(), line)));
            }
            line += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(out: &[Record]) -> Vec<(u64, bool)> {
        out.iter()
            .map(|r| (r.origin.position, r.bad_utf8))
            .collect()
    }

    #[test]
    fn numbers_lines_skips_blanks_and_flags_bad_utf8() {
        let input: &[u8] = b"{\"a\":1}\r\n\n   \n{\"b\":\xff}\n{\"c\":3}\r\r\n";
        let mut src = LineSource::new(input, "in");
        let mut out = Vec::new();
        assert!(src.read_chunk(2, &mut out).unwrap());
        assert!(!src.read_chunk(10, &mut out).unwrap());
        assert_eq!(positions(&out), [(1, false), (4, true), (5, false)]);
        assert_eq!(out[0].text, "{\"a\":1}");
        assert_eq!(
            out[2].text, "{\"c\":3}",
            "every carriage return before the end is cut"
        );
    }

    #[test]
    fn blocks_hold_at_most_max_lines_across_buffer_refills() {
        let text: String = (1..=10).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        for capacity in [1, 3, 7, 64] {
            let reader = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let mut src = LineSource::new(reader, "in");
            let mut sizes = Vec::new();
            let mut out = Vec::new();
            while let Some(block) = src.next_block(4).unwrap() {
                let before = out.len();
                block.split_into(&mut out);
                sizes.push(out.len() - before);
            }
            assert_eq!(sizes, [4, 4, 2], "buffer of {capacity} bytes");
            let numbers: Vec<u64> = out.iter().map(|r| r.origin.position).collect();
            assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
            assert_eq!(out[9].text, "{\"n\":10}");
        }
    }

    #[test]
    fn a_last_line_without_terminator_is_numbered_and_kept() {
        let mut src = LineSource::new(&b"{}\n\n{\"x\":1}"[..], "in");
        let mut out = Vec::new();
        while let Some(block) = src.next_block(256).unwrap() {
            block.split_into(&mut out);
        }
        assert_eq!(positions(&out), [(1, false), (3, false)]);
        assert_eq!(src.line, 3);
    }
}
