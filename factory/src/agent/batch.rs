//! Output batching: bytes a task wrote become UTF-8 text chunks of at most
//! a given size, cut after a line where one fits, so that the server gets
//! few calls and readers get whole lines. Pure; the shipper decides when
//! to flush.

/// One stream's pending output.
#[derive(Debug)]
pub struct Batcher {
    max_bytes: usize,
    text: String,
    /// The start of a UTF-8 sequence whose rest has not arrived yet.
    tail: Vec<u8>,
}

impl Batcher {
    /// `max_bytes` must leave room for one character (at least 4).
    #[must_use]
    pub fn new(max_bytes: usize) -> Batcher {
        Batcher {
            max_bytes: max_bytes.max(4),
            text: String::new(),
            tail: Vec::new(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.tail.is_empty()
    }

    /// Bytes held, for bounding the buffer.
    #[must_use]
    pub fn len(&self) -> usize {
        self.text.len() + self.tail.len()
    }

    /// Adds what a task wrote; returns the chunks that are full now.
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut bytes = std::mem::take(&mut self.tail);
        bytes.extend_from_slice(data);
        let mut rest = bytes.as_slice();
        // Decode what is valid, replace what never will be, and keep an
        // incomplete sequence at the end for the next read.
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 just now.
                    self.text
                        .push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.tail = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        while self.text.len() >= self.max_bytes {
            out.push(self.cut());
        }
        out
    }

    /// Everything pending, as chunks. With `last`, an incomplete UTF-8
    /// sequence at the end is given up on (the stream ended).
    pub fn flush(&mut self, last: bool) -> Vec<String> {
        if last && !self.tail.is_empty() {
            self.tail.clear();
            self.text.push(char::REPLACEMENT_CHARACTER);
        }
        let mut out = Vec::new();
        while !self.text.is_empty() {
            out.push(self.cut());
        }
        out
    }

    /// Takes the first chunk: at most `max_bytes`, ending after the last
    /// newline in that window if there is one, else at a character
    /// boundary.
    fn cut(&mut self) -> String {
        let mut end = self.max_bytes.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        if end < self.text.len()
            && let Some(nl) = self.text[..end].rfind('\n')
        {
            end = nl + 1;
        }
        let rest = self.text.split_off(end);
        std::mem::replace(&mut self.text, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_waits_for_a_flush() {
        let mut b = Batcher::new(64);
        assert!(b.push(b"hello\nwor").is_empty());
        assert_eq!(b.len(), 9);
        assert_eq!(b.flush(false), vec!["hello\nwor"]);
        assert!(b.is_empty());
        assert!(b.flush(true).is_empty());
    }

    #[test]
    fn full_chunks_end_after_a_line() {
        let mut b = Batcher::new(10);
        let chunks = b.push(b"abc\ndefg\nhijklmnop\nq");
        assert_eq!(chunks, vec!["abc\ndefg\n", "hijklmnop\n"]);
        assert_eq!(b.flush(true), vec!["q"]);
    }

    #[test]
    fn a_long_line_is_cut_at_the_limit() {
        let mut b = Batcher::new(8);
        let chunks = b.push(&[b'x'; 20]);
        assert_eq!(chunks, vec!["xxxxxxxx", "xxxxxxxx"]);
        assert_eq!(b.flush(false), vec!["xxxx"]);
    }

    #[test]
    fn chunks_never_exceed_the_limit_nor_split_a_character() {
        let mut b = Batcher::new(7);
        // "é" is two bytes: 3 of them make 6, a 4th would make 8.
        let text = "éééééééé\n".repeat(3);
        let mut chunks = Vec::new();
        for byte in text.as_bytes() {
            chunks.extend(b.push(std::slice::from_ref(byte)));
        }
        chunks.extend(b.flush(true));
        assert!(chunks.iter().all(|c| c.len() <= 7), "{chunks:?}");
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn a_character_split_across_reads_is_joined() {
        let mut b = Batcher::new(64);
        let euro = "€".as_bytes();
        assert!(b.push(&euro[..1]).is_empty());
        assert_eq!(b.flush(false), Vec::<String>::new());
        assert!(b.push(&euro[1..]).is_empty());
        assert_eq!(b.flush(false), vec!["€"]);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut b = Batcher::new(64);
        assert!(b.push(b"a\xffb\xe2\x82").is_empty());
        assert_eq!(b.flush(true), vec!["a\u{fffd}b\u{fffd}"]);
    }

    #[test]
    fn the_protocols_limit_holds_for_a_big_burst() {
        let mut b = Batcher::new(64 * 1024);
        let line = "a line of output that is fairly long, as lines go\n";
        let burst = line.repeat(10_000);
        let mut chunks = b.push(burst.as_bytes());
        chunks.extend(b.flush(true));
        assert!(chunks.iter().all(|c| c.len() <= 64 * 1024));
        assert!(chunks.iter().all(|c| c.ends_with('\n')));
        assert_eq!(chunks.concat(), burst);
    }
}
