//! Plain-text rendering of feed HTML, for ticker extraction and the plain-text e-mail part.

/// Elements whose content is never readable text; `head` also ends at `<body` because `</head>` is optional.
const HIDDEN_ELEMENTS: [&str; 3] = ["script", "style", "head"];

/// Phrasing elements that sit inside a word (`<b>N</b>OK`); every other tag separates words.
const INLINE_ELEMENTS: [&str; 21] = [
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark", "q", "s", "small",
    "span", "strong", "sub", "sup",
];

/// Converts an HTML fragment or document to one line of plain text.
///
/// Tags are removed (block tags become a space, `script`/`style`/`head` lose their content), entities are decoded,
/// control and invisible formatting characters are dropped and whitespace (including `&nbsp;`) collapses to one
/// space. A `<` that cannot open a tag (`P/E < 5`) is text; an unterminated tag at the end is dropped, as browsers do.
pub fn html_to_text(html: &str) -> String {
    decode_and_normalise(&strip_tags(html))
}

/// Removes markup, leaving entities encoded so that `&lt;b&gt;` stays text.
fn strip_tags(html: &str) -> String {
    let bytes = html.as_bytes();
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` are valid in `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    while let Some(offset) = html[pos..].find('<') {
        let open = pos + offset;
        out.push_str(&html[pos..open]);
        pos = match bytes.get(open + 1) {
            Some(b'!') if lower[open..].starts_with("<!--") => {
                lower[open + 4..].find("-->").map_or(html.len(), |end| open + 4 + end + 3)
            }
            Some(&next) if next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?') => {
                let Some(close) = tag_end(bytes, open + 1) else { return out };
                let closing = next == b'/';
                let name_start = if closing { open + 2 } else { open + 1 };
                let name_len = lower[name_start..close].bytes().take_while(u8::is_ascii_alphanumeric).count();
                let name = &lower[name_start..name_start + name_len];
                if !INLINE_ELEMENTS.contains(&name) {
                    out.push(' ');
                }
                if !closing && HIDDEN_ELEMENTS.contains(&name) {
                    match hidden_content_end(&lower, close + 1, name) {
                        Some(end) => end,
                        None => return out,
                    }
                } else {
                    close + 1
                }
            }
            _ => {
                out.push('<');
                open + 1
            }
        };
    }
    out.push_str(&html[pos..]);
    out
}

/// Index of the `>` closing a tag that starts before `from`; a `>` inside a quoted attribute value does not count.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut after_equals = false;
    let mut i = from;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'>' => return Some(i),
            b'=' => after_equals = true,
            b'"' | b'\'' if after_equals => {
                i += 1 + bytes.get(i + 1..)?.iter().position(|&b| b == byte)?;
                after_equals = false;
            }
            b if b.is_ascii_whitespace() => {}
            _ => after_equals = false,
        }
        i += 1;
    }
    None
}

/// Index just past the end tag of a hidden element whose content starts at `from` (for `head`, the index of `<body`
/// if that comes first). Scans forward only, so repeated hidden elements stay linear.
fn hidden_content_end(lower: &str, from: usize, name: &str) -> Option<usize> {
    let end_tag = format!("</{name}");
    let mut pos = from;
    while let Some(offset) = lower[pos..].find('<') {
        let at = pos + offset;
        if lower[at..].starts_with(&end_tag) {
            return tag_end(lower.as_bytes(), at + end_tag.len()).map(|close| close + 1);
        }
        if name == "head" && lower[at..].starts_with("<body") {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

fn decode_and_normalise(text: &str) -> String {
    let decoded = html_escape::decode_html_entities(text);
    let mut out = String::with_capacity(decoded.len());
    let mut pending_space = false;
    for c in decoded.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if !c.is_control() && !is_invisible(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// Zero-width and bidi-control characters that would hide inside a word (`NO&shy;K`) or reorder displayed text.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Shortens `text` to at most `max_chars` characters plus a trailing "…", cutting at the last word boundary when
/// there is one, so previews do not end mid-word.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max_chars) else { return text.to_string() };
    let head = &text[..cut];
    let head = if text[cut..].starts_with(char::is_whitespace) {
        head
    } else {
        match head.rfind(char::is_whitespace) {
            Some(space) if !head[..space].trim_end().is_empty() => &head[..space],
            _ => head,
        }
    };
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_are_removed_and_block_tags_separate_words() {
        assert_eq!(html_to_text("<p>Nokia rose.</p><p>Xiaomi fell.</p>"), "Nokia rose. Xiaomi fell.");
        assert_eq!(
            html_to_text("one<br>two<br/>three<div>four</div><ul><li>five</li><li>six</li></ul>"),
            "one two three four five six"
        );
        assert_eq!(html_to_text("NYSE: <strong>NOK</strong> and <b>N</b>OK"), "NYSE: NOK and NOK");
        assert_eq!(html_to_text(r#"(<a href="https://x.example/tag/nok/" title="a>b">NYSE:NOK</a>)"#), "(NYSE:NOK)");
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(html_to_text("Xiaomi&#8217;s shares [&#8230;]"), "Xiaomi\u{2019}s shares [\u{2026}]");
        assert_eq!(html_to_text("AT&amp;T &lt;b&gt; NYSE:&nbsp;NOK&#160;x"), "AT&T <b> NYSE: NOK x");
        assert_eq!(html_to_text("AT&T rose; &bogus; stays"), "AT&T rose; &bogus; stays");
    }

    #[test]
    fn script_style_head_and_comments_are_dropped() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body><script>var a = '<p>';</script>\
                    <p>Visible<!-- hidden --> text</p><STYLE type=\"text/css\">x</STYLE>end</body></html>";
        assert_eq!(html_to_text(html), "Visible text end");
        assert_eq!(html_to_text("<head><meta charset=utf-8><body>body text"), "body text");
    }

    #[test]
    fn a_less_than_sign_that_opens_no_tag_is_text() {
        assert_eq!(html_to_text("P/E < 5 and 3<4, <= 2, <3"), "P/E < 5 and 3<4, <= 2, <3");
    }

    #[test]
    fn unterminated_markup_is_dropped_without_panicking() {
        assert_eq!(html_to_text("Shares rose <a href=\"x"), "Shares rose");
        assert_eq!(html_to_text("Shares rose <b"), "Shares rose");
        assert_eq!(html_to_text("before<script>alert(1)"), "before");
        assert_eq!(html_to_text("before<!-- never closed"), "before");
    }

    #[test]
    fn control_characters_and_whitespace_runs_collapse() {
        assert_eq!(html_to_text("  a\n\tb\r\n\u{0}c\u{7}d  \u{A0} NO\u{AD}K\u{200B} "), "a b cd NOK");
        assert_eq!(html_to_text(""), "");
    }

    #[test]
    fn truncation_prefers_the_last_word_boundary() {
        assert_eq!(truncate_chars("Nokia and Xiaomi sign deal", 14), "Nokia and…");
        assert_eq!(truncate_chars("Nokia and Xiaomi sign deal", 16), "Nokia and Xiaomi…");
        assert_eq!(truncate_chars("Supercalifragilistic", 5), "Super…");
        assert_eq!(truncate_chars("short", 5), "short");
        assert_eq!(truncate_chars("äöü ßé", 4), "äöü…");
        assert_eq!(truncate_chars("abc", 0), "…");
    }

    proptest! {
        #[test]
        fn html_to_text_never_panics(html in any::<String>()) {
            let text = html_to_text(&html);
            prop_assert!(!text.contains("  ") && text.trim() == text);
        }

        #[test]
        fn html_to_text_never_panics_on_markup_like_input(html in "[<>/!?\"'=&#;a-z0-9 -]{0,64}") {
            html_to_text(&html);
        }

        #[test]
        fn truncation_respects_the_limit(text in any::<String>(), max_chars in 0usize..40) {
            prop_assert!(truncate_chars(&text, max_chars).chars().count() <= max_chars + 1);
        }
    }
}
