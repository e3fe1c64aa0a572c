//! Finds the listings a news item is about: exchange-qualified mentions, cashtags and confirmed WordPress tags.

use crate::domain::{Exchange, Listing, exchange_from_prefix};
use regex::Regex;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

/// `(NYSE:NOK)`, `NASDAQ: AAPL`, `NYSE American: XYZ`, `HKG:1810`. Prefixes are upper-case apart from the
/// press-release spellings (`Nasdaq`, `NYSE Arca`, `Cboe`, `Xetra`), so prose like "She: A" never matches. The
/// symbol is upper-case and both ends sit on word boundaries (`\b` is an assertion, not look-around).
static EXCHANGE_MENTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \b(?P<prefix>
            NYSE(?:\s*(?:AMERICAN|American|ARCA|Arca|MKT))? | NASDAQ(?:GS|GM|CM)? | Nasdaq(?:GS|GM|CM)?
          | AMEX | ARCA | BATS | CBOE(?:\s*BZX)? | Cboe(?:\s*BZX)? | OTC(?:MKTS|QX|QB|PK)? | PINK
          | TSXV | TSX | TSE | CVE | CSE | CNSX | LON | LSE | XETRA | Xetra | ETR | FRA | EPA | AMS | EBR | ELI
          | BIT | BME | SWX | VTX | HEL | STO | CPH | OSL | HKG | HKEX | SEHK | TYO | ASX | NSE | BOM | BSE
          | KRX | KOSDAQ | SHA | SSE | SHE | SZSE | TPE
        )
        \s?:\s*
        (?P<symbol>[A-Z0-9]{1,10}(?:[./-][A-Z]{1,2})?)\b",
    )
    .expect("valid regex")
});

/// Cashtags with twitter-text semantics: `$` at the start or after whitespace, `(` or `[` (an explicit group, as the
/// regex crate has no look-behind), 1–6 letters, an optional `.`/`_` class, then a non-word character or the end.
/// Requiring a letter first rules out `$1 billion` and `$5.83`; `US$5` fails because `$` follows a letter.
static CASHTAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(\[])(?P<tag>\$(?P<symbol>[A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?))\b").expect("valid regex")
});

/// Runs of title text between whitespace and punctuation, for matching tag hints as whole words.
static TITLE_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"[^\s()\[\]{},;:!?"'“”‘’]+"#).expect("valid regex"));

/// Currency codes that look like cashtags (`$US`, `$CAD`).
const CURRENCY_CODES: [&str; 12] = ["US", "USD", "CAD", "AUD", "HKD", "EUR", "GBP", "JPY", "CHF", "CNY", "NZD", "SGD"];

/// Upper-case words that blogs use as tags and in titles but that are not tickers here.
const TAG_ACRONYMS: [&str; 16] =
    ["ADR", "ADS", "AI", "CEO", "CFO", "CPI", "EPS", "ESG", "ETF", "EU", "FDA", "GDP", "IPO", "SEC", "UK", "USA"];

/// Listings mentioned in a news item, distinct, in order of first appearance (title first, then body).
///
/// Sources, all conservative because a false ticker sends a stray alert:
/// - exchange-qualified mentions (`(NYSE:NOK)`, `NYSE: BRK.B`, `(Nasdaq: AAPL)`, `(HKG:1810)`); `TSE` is Toronto,
///   or Tokyo when the symbol is numeric;
/// - cashtags (`$NOK`, `$aapl`, `$NOK’s`), read as US listings; currency codes (`$US`, `$CAD`) are ignored;
/// - `hints`, the post's WordPress tags/categories. A hint is considered only when it is exactly an upper-case
///   symbol (`NOK`, not `Nokia`, `nok` or `Technology`; surrounding spaces ignored) that is not a currency, exchange or common acronym. If the
///   text has that symbol as a mention or cashtag, the hint merely confirms it; otherwise it adds a US listing only
///   when it is a 1–5 letter word standing on its own in the title (`NOK Jumps`, not `(TSX:NOK)`).
///
/// Bare parenthesised words (`(ADR)`, `(CEO)`, `(2026)`) are never tickers. Both texts should be plain text (see
/// `html_to_text`); markup is tolerated but entities are not decoded here.
pub fn extract_tickers(title: &str, body_text: &str, hints: &[&str]) -> Vec<Listing> {
    let mut title_mentions = mentions(title);
    let mention_spans = merged_spans(&title_mentions);
    let hinted: Vec<_> =
        hints.iter().filter_map(|hint| hinted_title_word(title, hint.trim(), &mention_spans)).collect();
    title_mentions.extend(hinted);
    title_mentions.sort_by_key(|(span, _)| span.start);

    let mut seen = HashSet::new();
    title_mentions
        .into_iter()
        .chain(mentions(body_text))
        .map(|(_, listing)| listing)
        .filter(|listing| seen.insert(listing.clone()))
        .collect()
}

/// Exchange-qualified mentions and cashtags with their byte spans, ordered by position.
fn mentions(text: &str) -> Vec<(Range<usize>, Listing)> {
    let qualified = EXCHANGE_MENTION.captures_iter(text).filter_map(|captures| {
        let listing = qualified_listing(&captures["prefix"], &captures["symbol"])?;
        Some((captures.get(0)?.range(), listing))
    });
    let cashtags = CASHTAG.captures_iter(text).filter_map(|captures| {
        let symbol = captures["symbol"].to_ascii_uppercase();
        if CURRENCY_CODES.contains(&symbol.as_str()) {
            return None;
        }
        Some((captures.name("tag")?.range(), Listing::new(Exchange::Us, &symbol)?))
    });
    let mut found: Vec<_> = qualified.chain(cashtags).collect();
    found.sort_by_key(|(span, _)| span.start);
    found
}

fn qualified_listing(prefix: &str, symbol: &str) -> Option<Listing> {
    let exchange = exchange_from_prefix(prefix)?;
    Listing::new(exchange, symbol).or_else(|| {
        let tokyo_code = prefix == "TSE" && symbol.bytes().all(|b| b.is_ascii_digit());
        tokyo_code.then(|| Listing::new(Exchange::Tokyo, symbol)).flatten()
    })
}

/// Sorted, disjoint byte ranges covered by mentions (a cashtag like `$NYSE:AB` can overlap a qualified mention), so
/// a position can be looked up by binary search.
fn merged_spans(mentions: &[(Range<usize>, Listing)]) -> Vec<Range<usize>> {
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(mentions.len());
    for (span, _) in mentions {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span.clone()),
        }
    }
    merged
}

/// The US listing for `hint` with the position of its first free-standing occurrence in the title (see
/// [`extract_tickers`] for the rule).
fn hinted_title_word(title: &str, hint: &str, mention_spans: &[Range<usize>]) -> Option<(Range<usize>, Listing)> {
    let plausible = (1..=5).contains(&hint.len())
        && hint.bytes().all(|b| b.is_ascii_uppercase())
        && !CURRENCY_CODES.contains(&hint)
        && !TAG_ACRONYMS.contains(&hint)
        && exchange_from_prefix(hint).is_none();
    if !plausible {
        return None;
    }
    let word = TITLE_WORD.find_iter(title).find(|word| {
        word.as_str().trim_end_matches('.') == hint
            && !mention_spans
                .get(mention_spans.partition_point(|span| span.end <= word.start()))
                .is_some_and(|span| span.contains(&word.start()))
    })?;
    Some((word.range(), Listing::new(Exchange::Us, hint)?))
}

#[cfg(test)]
mod tests {
    use super::super::text::html_to_text;
    use super::*;
    use proptest::prelude::*;

    const WP_ITEM_1_TITLE: &str = "Nokia Oyj (ADR) (NYSE:NOK) and Xiaomi ink Patent And Equipment Deal";
    const WP_ITEM_1_CONTENT: &str = r#"<p>Nokia Oyj (ADR) (<a href="https://stocknews.example/tag/nok/">NYSE:NOK</a>) and Xiaomi Corp (HKG:1810) have signed a multi-year patent cross-license and network equipment agreement, the companies said on Tuesday.</p>
<p>Shares of Nokia rose 0.9% to $5.83 in New York. Xiaomi&#8217;s U.S.-traded shares (OTCMKTS:XIACF) were little changed. The deal is reportedly worth more than $1 billion over its term.</p>
"#;
    const WP_ITEM_2_TITLE: &str = "Royal Bank of Canada (TSX:RY) Lifts Dividend; Vodafone (LON:VOD) Slips";
    const WP_ITEM_2_CONTENT: &str = "<p>Royal Bank of Canada (TSX:RY) (NYSE:RY) raised its quarterly dividend. Berkshire Hathaway (NYSE: BRK.B) was flat, while $AAPL and (NASDAQ: AAPL) traders watched the $US dollar. Vodafone Group (LON:VOD) slipped 1.2%.</p>\n";

    fn keys(title: &str, body: &str, hints: &[&str]) -> Vec<String> {
        extract_tickers(title, body, hints).iter().map(Listing::key).collect()
    }

    #[test]
    fn wordpress_fixture_items_yield_their_listings() {
        let item_1 =
            keys(&html_to_text(WP_ITEM_1_TITLE), &html_to_text(WP_ITEM_1_CONTENT), &["Technology", "NOK", "Xiaomi"]);
        assert_eq!(item_1, ["NOK", "1810.HK", "XIACF"]);
        let item_1 = extract_tickers(WP_ITEM_1_TITLE, &html_to_text(WP_ITEM_1_CONTENT), &[]);
        assert_eq!(
            item_1.iter().map(Listing::exchange).collect::<Vec<_>>(),
            [Exchange::Us, Exchange::HongKong, Exchange::Us]
        );

        let item_2 = keys(&html_to_text(WP_ITEM_2_TITLE), &html_to_text(WP_ITEM_2_CONTENT), &["Dividends"]);
        assert_eq!(item_2, ["RY.TO", "VOD.L", "RY", "BRK.B", "AAPL"]);
    }

    #[test]
    fn extraction_finds_true_mentions_and_ignores_look_alikes() {
        let no: &[&str] = &[];
        let cases: &[(&str, &str, &[&str], &[&str])] = &[
            // Exchange-qualified mentions.
            ("", "Nokia (NYSE:NOK) rose", no, &["NOK"]),
            ("", "Apple (NASDAQ: AAPL) fell", no, &["AAPL"]),
            ("", "Apple Inc. (Nasdaq: AAPL) today announced", no, &["AAPL"]),
            ("", "Berkshire Hathaway NYSE: BRK.B was flat", no, &["BRK.B"]),
            ("", "NYSE:BRK-B and NYSE: BRK/A", no, &["BRK.B", "BRK.A"]),
            ("", "Xiaomi (OTCMKTS:XIACF) was unchanged", no, &["XIACF"]),
            ("", "Royal Bank (TSX:RY) lifts dividend", no, &["RY.TO"]),
            ("", "Vodafone (LON:VOD) slips", no, &["VOD.L"]),
            ("", "Xiaomi Corp (HKG:1810) and Tencent (HKG: 0700)", no, &["1810.HK", "700.HK"]),
            ("", "Alphabet (NASDAQ:GOOGL, NASDAQ:GOOG) rose", no, &["GOOGL", "GOOG"]),
            ("", "Royal Bank of Canada (TSX:RY) (NYSE:RY)", no, &["RY.TO", "RY"]),
            ("", "Acme Corp (NYSE American: XYZ) and SPDR (NYSE Arca: SPY)", no, &["XYZ", "SPY"]),
            ("", "NYSE:A,NYSE:B", no, &["A", "B"]),
            ("", "Nokia (HEL:NOKIA), Toyota (TYO:7203), Shopify (TSE:SHOP)", no, &["NOKIA.HE", "7203.T", "SHOP.TO"]),
            ("", "Sony (TSE:6758) and a venture (CVE:ABC)", no, &["6758.T", "ABC.V"]),
            ("", "Bought NYSE:NOK. Then NYSE:NOK’s peer (NYSE:ERIC)", no, &["NOK", "ERIC"]),
            ("", "NYSE:\u{a0}NOK via <a href=\"x\">NASDAQ:AAPL</a>", no, &["NOK", "AAPL"]),
            // Cashtags.
            ("", "$NOK rose while $aapl fell", no, &["NOK", "AAPL"]),
            ("", "$NOK’s deal and $ERIC's reply", no, &["NOK", "ERIC"]),
            ("", "Buffett's $BRK.B", no, &["BRK.B"]),
            ("", "($NOK) [$AAPL] $MSFT,$GOOG", no, &["NOK", "AAPL", "MSFT"]),
            // Look-alikes that must yield nothing.
            ("", "worth $1 billion, up to $5.83, a $5B deal", no, &[]),
            ("", "the $US dollar, $USD, $cad, $EUR and $GBP", no, &[]),
            ("", "US$5 and C$10 and HK$3 or C$ alone", no, &[]),
            ("", "$ES_F futures, $ABCDEFG and price$NOK", no, &[]),
            ("", "Nokia Oyj (ADR) (CEO) (EPS) (ETF) (IPO) (FDA)", no, &[]),
            ("Q1 (2026) results", "Results for Q1 (2026) and (NYSE:2026)", no, &[]),
            ("", "listed on the (NYSE) and (NYSE: ) only", no, &[]),
            ("", "ANYSE:X, NYSEX:Y, NYSE:NOKs, nyse:NOK", no, &[]),
            ("", "Time: 10:30 ET. She: A deal. Note: OK", no, &[]),
            ("", "Patched CVE-2024-1234 and CVE: 2024-5678", no, &[]),
            ("", "Mail a@b.com or see https://stocknews.example/tag/nok/?s=$NOK and http://example.com:8080/", no, &[]),
            // Tag hints.
            ("NOK Shares Jump", "", &["Technology", "NOK", "Xiaomi"], &["NOK"]),
            ("Nokia shares jump", "Nokia (NYSE:NOK)", &["Technology", "NOK", "Xiaomi"], &["NOK"]),
            ("Xiaomi Technology Dividends", "", &["Technology", "Dividends", "Xiaomi"], &[]),
            ("Nok shares", "", &["NOK", "nok"], &[]),
            ("Royal Bank (TSX:RY) lifts dividend", "", &["RY"], &["RY.TO"]),
            ("US Stocks: AI Rally As NYSE Hits ADR Record", "", &["US", "AI", "NYSE", "ADR"], &[]),
            ("(HKG:1810) Partners With NOK.", "Later $AAPL", &[" NOK "], &["1810.HK", "NOK", "AAPL"]),
        ];
        assert!(cases.len() >= 30);
        for (title, body, hints, expected) in cases {
            assert_eq!(keys(title, body, hints), *expected, "title {title:?}, body {body:?}, hints {hints:?}");
        }
    }

    proptest! {
        #[test]
        fn extraction_never_panics(title in any::<String>(), body in any::<String>(), hint in any::<String>()) {
            extract_tickers(&title, &body, &[&hint]);
        }

        #[test]
        fn extraction_never_panics_on_ticker_like_input(
            text in "[ ($:\\[\\]A-Za-z0-9.\\-/_,’'\u{a0}é]{0,60}",
            hint in "[A-Z]{0,6}",
        ) {
            for listing in extract_tickers(&text, &text, &[&hint]) {
                prop_assert_eq!(Listing::parse_key(&listing.key()), Some(listing));
            }
        }
    }
}
