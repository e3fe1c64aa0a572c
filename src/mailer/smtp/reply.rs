//! SMTP replies (RFC 5321 §4.2), read from a server we do not trust: every
//! line and every reply is bounded, anything that is not a well-formed reply
//! ends the session, and the text kept for logs and `last_error` is printable
//! and short.

use std::fmt;

/// The longest reply line accepted. RFC 5321 allows 512 bytes; some servers
/// write longer lines, none sensibly longer than this.
pub(super) const MAX_LINE: usize = 2048;
/// The most lines one reply may have (an EHLO reply lists one per extension).
const MAX_LINES: usize = 64;
/// The most reply text kept for an error message.
const MAX_TEXT: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Each line's text, without the code.
    pub lines: Vec<String>,
}

impl Reply {
    /// The server's words on one line, cut short if long.
    pub fn text(&self) -> String {
        let mut text = self.lines.join(" ");
        if text.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        text
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// Gathers the lines of one reply as they arrive.
#[derive(Default)]
pub(super) struct ReplyLines {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyLines {
    /// Takes one line (without its line end). Returns the reply once its last
    /// line arrived, or why the server's answer is not SMTP.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<Reply>, String> {
        let malformed = || format!("the server's reply is not SMTP: {:?}", printable(&line[..line.len().min(80)]));
        let code = match line {
            [a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(malformed()),
        };
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(malformed()),
        };
        if *self.code.get_or_insert(code) != code {
            return Err(format!("the server's reply mixes codes {} and {code}", self.code.unwrap_or(code)));
        }
        if self.lines.len() == MAX_LINES {
            return Err(format!("the server's reply has more than {MAX_LINES} lines"));
        }
        self.lines.push(printable(line.get(4..).unwrap_or_default()));
        Ok(last.then(|| Reply { code, lines: std::mem::take(&mut self.lines) }))
    }
}

/// The text as UTF-8 (lossy) with control characters replaced, so a hostile
/// reply cannot forge log lines.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Option<Reply>, String> {
        let mut reply = ReplyLines::default();
        let mut result = Ok(None);
        for line in lines {
            result = reply.push(line.as_bytes());
            if result.is_err() {
                break;
            }
        }
        result
    }

    #[test]
    fn single_and_multi_line_replies_are_read() {
        assert_eq!(parse(&["250 OK"]), Ok(Some(Reply { code: 250, lines: vec!["OK".into()] })));
        assert_eq!(parse(&["354"]), Ok(Some(Reply { code: 354, lines: vec![String::new()] })));
        let ehlo = parse(&["250-sink.example", "250-PIPELINING", "250 8BITMIME"]).unwrap().unwrap();
        assert_eq!(ehlo.lines, ["sink.example", "PIPELINING", "8BITMIME"]);
        assert_eq!(parse(&["250-first"]), Ok(None), "more lines to come");
    }

    #[test]
    fn anything_else_is_refused() {
        for garbage in ["HTTP/1.1 400 Bad Request", "25 OK", "650 OK", "250x OK", "", "abc"] {
            assert!(parse(&[garbage]).is_err(), "{garbage:?}");
        }
        assert!(parse(&["250-one", "251 two"]).is_err(), "codes must match");
        let endless: Vec<&str> = std::iter::repeat_n("250-more", MAX_LINES + 1).collect();
        assert!(parse(&endless).is_err());
    }

    #[test]
    fn reply_text_is_printable_and_bounded() {
        let reply = parse(&["550 no\x1b[31m such\u{7f} user"]).unwrap().unwrap();
        assert_eq!(reply.to_string(), "550 no?[31m such? user");
        let long = format!("421 {}", "é".repeat(MAX_TEXT));
        let text = parse(&[&long]).unwrap().unwrap().text();
        assert!(text.len() <= MAX_TEXT + '…'.len_utf8() && text.ends_with('…'));
    }
}
