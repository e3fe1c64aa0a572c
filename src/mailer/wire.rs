//! Message text into SMTP wire form in one pass: CRLF line ends, a dot
//! doubled at the start of a line (RFC 5321 §4.5.2), and a transfer encoding
//! that keeps every line 7-bit and within the limits of RFC 5322.

/// The longest line of a 7bit part, without its CRLF (RFC 5322 §2.1.1).
const MAX_7BIT_LINE: usize = 998;
/// The longest encoded line of quoted-printable, with its soft break `=`
/// (RFC 2045 §6.7).
const MAX_QP_LINE: usize = 76;

/// How a part's text goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    SevenBit,
    QuotedPrintable,
}

impl TransferEncoding {
    pub fn header_value(self) -> &'static str {
        match self {
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::QuotedPrintable => "quoted-printable",
        }
    }
}

/// The lines of `text`, each without its line end: LF, CRLF and a lone CR
/// all end a line, as lettre reads them. The last item is what follows the
/// last line end (empty when the text ends with one).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut line_ends = memchr::memchr2_iter(b'\n', b'\r', bytes);
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        loop {
            match line_ends.next() {
                // The LF of a CRLF, already taken with its CR.
                Some(at) if at < from => {}
                Some(at) => {
                    let crlf = bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n');
                    start = Some(at + if crlf { 2 } else { 1 });
                    return Some(&text[from..at]);
                }
                None => {
                    start = None;
                    return Some(&text[from..]);
                }
            }
        }
    })
}

/// Writes lines with CRLF between them, not after the last.
fn write_lines<'a>(
    out: &mut Vec<u8>,
    text: &'a str,
    mut write_line: impl FnMut(&mut Vec<u8>, &'a str) -> bool,
) -> bool {
    for (i, line) in lines(text).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        if !write_line(out, line) {
            return false;
        }
    }
    true
}

/// Appends text that is already 7-bit, or returns false (having written part
/// of it) when it is not: a byte above 127, a NUL, or a line too long.
pub fn write_7bit(out: &mut Vec<u8>, text: &str) -> bool {
    write_lines(out, text, |out, line| {
        if line.len() > MAX_7BIT_LINE || !line.is_ascii() || line.contains('\0') {
            return false;
        }
        push_stuffed(out, line.as_bytes());
        true
    })
}

/// Appends HTML as 7-bit text: every character beyond ASCII becomes a
/// numeric character reference, which an HTML reader shows as the character.
/// Returns false (having written part of it) when a line would be too long.
pub fn write_html_7bit(out: &mut Vec<u8>, html: &str) -> bool {
    write_lines(out, html, |out, line| {
        let start = out.len();
        if line.is_ascii() && !line.contains('\0') {
            push_stuffed(out, line.as_bytes());
        } else {
            if line.starts_with('.') {
                out.push(b'.');
            }
            for c in line.chars() {
                match c {
                    '\0' => out.extend_from_slice(b"&#65533;"),
                    c if c.is_ascii() => out.push(c as u8),
                    c => {
                        out.extend_from_slice(b"&#");
                        push_decimal(out, u32::from(c));
                        out.push(b';');
                    }
                }
            }
        }
        out.len() - start <= MAX_7BIT_LINE + usize::from(line.starts_with('.'))
    })
}

/// Lines of a part encoded once both ways, to be put into many messages
/// as they are: what every reader's copy of a digest shares. Encoding is
/// line by line, so a part made of such pieces and of text encoded on the
/// spot is the same as the whole part encoded at once, as long as each
/// piece starts at the beginning of a line.
#[derive(Debug, Clone)]
pub struct EncodedLines {
    /// `None` when the lines cannot go as 7bit.
    seven_bit: Option<Vec<u8>>,
    quoted_printable: Vec<u8>,
    /// The text's length, for sizing buffers.
    text_len: usize,
}

impl EncodedLines {
    /// `text` ends with a line end, so that what follows it starts a line.
    pub fn new(text: &str, write_7bit: fn(&mut Vec<u8>, &str) -> bool) -> Self {
        debug_assert!(text.ends_with('\n'), "a block ends its last line");
        let mut seven_bit = Vec::with_capacity(text.len() + text.len() / 8);
        let seven_bit = write_7bit(&mut seven_bit, text).then_some(seven_bit);
        let mut quoted_printable = Vec::with_capacity(text.len() + text.len() / 8);
        write_quoted_printable(&mut quoted_printable, text);
        Self { seven_bit, quoted_printable, text_len: text.len() }
    }
}

/// Part of a part's text: written out when the message is made, or encoded beforehand.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// Any text, but one followed by `Encoded` ends with a line end.
    Text(&'a str),
    Encoded(&'a EncodedLines),
}

impl Piece<'_> {
    pub fn len(&self) -> usize {
        match self {
            Piece::Text(text) => text.len(),
            Piece::Encoded(lines) => lines.text_len,
        }
    }
}

/// Appends the pieces as 7bit (`write_7bit` for the text ones), or returns
/// false (having written part of them) when some cannot be.
pub fn write_pieces_7bit(out: &mut Vec<u8>, pieces: &[Piece<'_>], write_7bit: fn(&mut Vec<u8>, &str) -> bool) -> bool {
    pieces.iter().all(|piece| match piece {
        Piece::Text(text) => write_7bit(out, text),
        Piece::Encoded(lines) => match &lines.seven_bit {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                true
            }
            None => false,
        },
    })
}

/// Appends the pieces in quoted-printable.
pub fn write_pieces_quoted_printable(out: &mut Vec<u8>, pieces: &[Piece<'_>]) {
    for piece in pieces {
        match piece {
            Piece::Text(text) => write_quoted_printable(out, text),
            Piece::Encoded(lines) => out.extend_from_slice(&lines.quoted_printable),
        }
    }
}

/// Appends text in quoted-printable (RFC 2045 §6.7): runs of bytes that
/// stand for themselves are copied whole, the rest are `=XX`.
pub fn write_quoted_printable(out: &mut Vec<u8>, text: &str) {
    write_lines(out, text, |out, line| {
        let bytes = line.as_bytes();
        let mut column = 0;
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let scanned = &rest[..rest.len().min(MAX_QP_LINE)];
            // Most of a line is plain: check a whole window without branching
            // (it vectorises), and look for the first byte to encode only if not.
            let plain = scanned.iter().fold(true, |plain, &b| plain & is_literal(b));
            let mut run = if plain {
                scanned.len()
            } else {
                scanned.iter().position(|&b| !is_literal(b)).unwrap_or(scanned.len())
            };
            // Whitespace at the end of a line would be lost on the way.
            if run == rest.len() && matches!(rest[run - 1], b' ' | b'\t') {
                run -= 1;
            }
            // Room for the `=` of a soft break, unless the run ends the line.
            let room = MAX_QP_LINE - column;
            if run > 0 {
                let take = if run == rest.len() && run <= room { run } else { run.min(room - 1) };
                if take == 0 {
                    out.extend_from_slice(b"=\r\n");
                    column = 0;
                    continue;
                }
                if column == 0 && rest[0] == b'.' {
                    out.push(b'.');
                }
                out.extend_from_slice(&rest[..take]);
                column += take;
                at += take;
                continue;
            }
            let room = if rest.len() == 1 { room } else { room - 1 };
            if room < 3 {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            let byte = rest[0];
            out.extend_from_slice(&[b'=', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
            column += 3;
            at += 1;
        }
        true
    });
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Printable ASCII but `=`, and space and tab (RFC 2045 §6.7 rules 2 and 3).
fn is_literal(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | 33..=60 | 62..=126)
}

/// A line's bytes, with a second dot in front if it starts with one.
fn push_stuffed(out: &mut Vec<u8>, line: &[u8]) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
}

fn push_decimal(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Undoes the dot-stuffing: the message as it was before SMTP.
pub fn unstuffed(data: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(data.len());
    let mut at_line_start = true;
    for (i, &byte) in data.iter().enumerate() {
        if !(at_line_start && byte == b'.' && data.get(i + 1) == Some(&b'.')) {
            plain.push(byte);
        }
        at_line_start = byte == b'\n';
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl Fn(&mut Vec<u8>, &str) -> bool, text: &str) -> Option<String> {
        let mut out = Vec::new();
        write(&mut out, text).then(|| String::from_utf8(out).unwrap())
    }

    fn quoted_printable(text: &str) -> String {
        let mut out = Vec::new();
        write_quoted_printable(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    /// Decodes quoted-printable (after undoing the dot-stuffing).
    fn decoded(wire: &str) -> String {
        let plain = String::from_utf8(unstuffed(wire.as_bytes())).unwrap().replace("=\r\n", "");
        let mut bytes = Vec::new();
        let mut rest = plain.as_bytes();
        while let Some((&byte, tail)) = rest.split_first() {
            if byte == b'=' {
                bytes.push(u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(byte);
                rest = tail;
            }
        }
        String::from_utf8(bytes).unwrap().replace("\r\n", "\n")
    }

    #[test]
    fn line_ends_become_crlf_and_leading_dots_are_doubled() {
        assert_eq!(encoded(write_7bit, "a\nb\r\nc\rd\n").unwrap(), "a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(encoded(write_7bit, ".\n..x\nno.dot").unwrap(), "..\r\n...x\r\nno.dot");
        assert_eq!(unstuffed(b"..\r\n...x\r\nno.dot"), b".\r\n..x\r\nno.dot");
    }

    #[test]
    fn seven_bit_refuses_what_it_cannot_carry() {
        assert!(encoded(write_7bit, "caf\u{e9}").is_none());
        assert!(encoded(write_7bit, "nul\0").is_none());
        assert!(encoded(write_7bit, &"x".repeat(MAX_7BIT_LINE)).is_some());
        assert!(encoded(write_7bit, &"x".repeat(MAX_7BIT_LINE + 1)).is_none());
    }

    #[test]
    fn html_beyond_ascii_becomes_character_references() {
        let html = "<p>★ Café · 5 €</p>\n.<b>x</b>";
        assert_eq!(encoded(write_html_7bit, html).unwrap(), "<p>&#9733; Caf&#233; &#183; 5 &#8364;</p>\r\n..<b>x</b>");
        assert!(encoded(write_html_7bit, &"é".repeat(MAX_7BIT_LINE / 6 + 1)).is_none(), "too long once escaped");
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let texts = [
            "plain line\nanother",
            "price = 5 € · up\n\ttabbed and trailing space \n.leading dot",
            &format!("{}\n{}", "long ".repeat(40), "é".repeat(60)),
            &"=".repeat(100),
            &format!("{}\n{}=\n{} ", "x".repeat(75), "y".repeat(75), "z".repeat(75)),
            &format!("{}é{}", "a".repeat(74), "b".repeat(200)),
            "trailing tab\t\nspaces  \r\nlone\rcr",
            "ends with a newline\n",
        ];
        for text in texts {
            let wire = quoted_printable(text);
            assert_eq!(decoded(&wire), text.replace("\r\n", "\n").replace('\r', "\n"), "{wire}");
            for line in String::from_utf8(unstuffed(wire.as_bytes())).unwrap().split("\r\n") {
                assert!(line.len() <= MAX_QP_LINE, "{line:?}");
                assert!(!line.ends_with([' ', '\t']), "{line:?}");
                assert!(line.is_ascii());
            }
        }
        assert_eq!(quoted_printable("a = b\n.x"), "a =3D b\r\n..x");
    }

    #[test]
    fn pieces_encode_as_the_whole_text_would() {
        let parts = ["Hello ★ reader,\n", "a story · NOK\n.dot line\n", "\n", "x = y\n", "tail without end"];
        let whole = parts.concat();
        let blocks: Vec<EncodedLines> = parts[1..4].iter().map(|p| EncodedLines::new(p, write_html_7bit)).collect();
        let pieces = [
            Piece::Text(parts[0]),
            Piece::Encoded(&blocks[0]),
            Piece::Encoded(&blocks[1]),
            Piece::Text(""),
            Piece::Encoded(&blocks[2]),
            Piece::Text(parts[4]),
        ];
        let mut seven_bit = Vec::new();
        assert!(write_pieces_7bit(&mut seven_bit, &pieces, write_html_7bit));
        assert_eq!(Some(String::from_utf8(seven_bit).unwrap()), encoded(write_html_7bit, &whole));
        let mut qp = Vec::new();
        write_pieces_quoted_printable(&mut qp, &pieces);
        assert_eq!(String::from_utf8(qp).unwrap(), quoted_printable(&whole));
        let text_blocks: Vec<EncodedLines> = parts[1..4].iter().map(|p| EncodedLines::new(p, write_7bit)).collect();
        let pieces = [Piece::Text(parts[0]), Piece::Encoded(&text_blocks[0])];
        assert!(!write_pieces_7bit(&mut Vec::new(), &pieces, write_7bit), "not 7-bit text");
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_through_quoted_printable(text in "(?s)[ .=a\t\r\né€-]{0,200}|.{0,200}") {
            let wire = quoted_printable(&text);
            proptest::prop_assert_eq!(decoded(&wire), text.replace("\r\n", "\n").replace('\r', "\n"));
            for line in String::from_utf8(unstuffed(wire.as_bytes())).unwrap().split("\r\n") {
                proptest::prop_assert!(line.len() <= MAX_QP_LINE && line.is_ascii() && !line.ends_with([' ', '\t']));
            }
        }
    }
}
