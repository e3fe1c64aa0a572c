//! A canonical listing (exchange + symbol) and the symbol spelling each quote provider expects.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use std::fmt;

/// Quotes are still polled this long after the closing bell, to catch the close.
const AFTER_THE_CLOSE_MINUTES: i64 = 15;

/// The venue a symbol trades on. All US venues (NYSE, Nasdaq, NYSE American/Arca, Cboe, OTC) are one value because
/// every provider addresses them by the bare symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exchange {
    Us,
    Toronto,
    TsxVenture,
    /// Canadian Securities Exchange (CSE).
    Canadian,
    London,
    Xetra,
    Frankfurt,
    Paris,
    Amsterdam,
    Brussels,
    Lisbon,
    Milan,
    Madrid,
    Swiss,
    Helsinki,
    Stockholm,
    Copenhagen,
    Oslo,
    HongKong,
    Tokyo,
    Australia,
    IndiaNse,
    IndiaBse,
    Korea,
    KoreaKosdaq,
    Shanghai,
    Shenzhen,
    Taiwan,
}

/// Yahoo Finance suffix of every non-US exchange; it also forms the canonical key.
const YAHOO_SUFFIXES: [(Exchange, &str); 27] = [
    (Exchange::Toronto, "TO"),
    (Exchange::TsxVenture, "V"),
    (Exchange::Canadian, "CN"),
    (Exchange::London, "L"),
    (Exchange::Xetra, "DE"),
    (Exchange::Frankfurt, "F"),
    (Exchange::Paris, "PA"),
    (Exchange::Amsterdam, "AS"),
    (Exchange::Brussels, "BR"),
    (Exchange::Lisbon, "LS"),
    (Exchange::Milan, "MI"),
    (Exchange::Madrid, "MC"),
    (Exchange::Swiss, "SW"),
    (Exchange::Helsinki, "HE"),
    (Exchange::Stockholm, "ST"),
    (Exchange::Copenhagen, "CO"),
    (Exchange::Oslo, "OL"),
    (Exchange::HongKong, "HK"),
    (Exchange::Tokyo, "T"),
    (Exchange::Australia, "AX"),
    (Exchange::IndiaNse, "NS"),
    (Exchange::IndiaBse, "BO"),
    (Exchange::Korea, "KS"),
    (Exchange::KoreaKosdaq, "KQ"),
    (Exchange::Shanghai, "SS"),
    (Exchange::Shenzhen, "SZ"),
    (Exchange::Taiwan, "TW"),
];

impl Exchange {
    fn yahoo_suffix(self) -> Option<&'static str> {
        YAHOO_SUFFIXES.iter().find(|(exchange, _)| *exchange == self).map(|(_, suffix)| *suffix)
    }

    fn from_yahoo_suffix(suffix: &str) -> Option<Exchange> {
        YAHOO_SUFFIXES.iter().find(|(_, known)| known.eq_ignore_ascii_case(suffix)).map(|(exchange, _)| *exchange)
    }

    /// Markets whose listings are identified by numeric codes (HK 1810, JP 7203, KR 005930, CN 600519, TW 2330).
    fn has_numeric_codes(self) -> bool {
        use Exchange::*;
        matches!(self, HongKong | Tokyo | Korea | KoreaKosdaq | Shanghai | Shenzhen | Taiwan | IndiaBse)
    }
}

/// Maps an exchange prefix as written in news text (`NYSE`, `Nasdaq`, `NYSE American`, `TSX`, `LON`, `HKG`, …) to
/// its exchange, ignoring case and spaces. `TSE` is Toronto and `CVE` is TSX Venture, following Google Finance, whose
/// codes these sites copy.
pub fn exchange_from_prefix(prefix: &str) -> Option<Exchange> {
    use Exchange::*;
    let compact: String = prefix.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    Some(match compact.as_str() {
        "NYSE" | "NASDAQ" | "NASDAQGS" | "NASDAQGM" | "NASDAQCM" | "NYSEAMERICAN" | "NYSEMKT" | "AMEX" | "NYSEARCA"
        | "ARCA" | "BATS" | "CBOE" | "CBOEBZX" | "OTC" | "OTCMKTS" | "OTCQX" | "OTCQB" | "OTCPK" | "PINK" => Us,
        "TSX" | "TSE" => Toronto,
        "TSXV" | "CVE" => TsxVenture,
        "CSE" | "CNSX" => Canadian,
        "LON" | "LSE" => London,
        "ETR" | "XETRA" => Xetra,
        "FRA" => Frankfurt,
        "EPA" => Paris,
        "AMS" => Amsterdam,
        "EBR" => Brussels,
        "ELI" => Lisbon,
        "BIT" => Milan,
        "BME" => Madrid,
        "SWX" | "VTX" => Swiss,
        "HEL" => Helsinki,
        "STO" => Stockholm,
        "CPH" => Copenhagen,
        "OSL" => Oslo,
        "HKG" | "HKEX" | "SEHK" => HongKong,
        "TYO" => Tokyo,
        "ASX" => Australia,
        "NSE" => IndiaNse,
        "BOM" | "BSE" => IndiaBse,
        "KRX" => Korea,
        "KOSDAQ" => KoreaKosdaq,
        "SHA" | "SSE" => Shanghai,
        "SHE" | "SZSE" => Shenzhen,
        "TPE" => Taiwan,
        _ => return None,
    })
}

/// A security on one exchange. The symbol is upper-case with the share class after a `.` (`BRK.B`, `RCI.B`);
/// Hong Kong codes are stored without leading zeros (`700`), the form Stooq uses, and padded for Yahoo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listing {
    exchange: Exchange,
    symbol: String,
}

impl Listing {
    /// Validates and normalises a symbol: 1–10 of `A-Z0-9`, optionally a class separator (`.`, `-` or `/`, stored
    /// as `.`) and a 1–2 letter class; case is ignored. All-digit codes are accepted only on markets that use them,
    /// Hong Kong accepts nothing else, and US symbols must start with a letter. A US class equal to a Yahoo suffix
    /// (`XYZ.L`, `XYZ.TO`) is refused because its key would read back as a foreign listing (see [`Listing::key`]).
    pub fn new(exchange: Exchange, symbol: &str) -> Option<Listing> {
        let symbol = symbol.to_ascii_uppercase();
        let (base, class) = match symbol.split_once(['.', '-', '/']) {
            Some((base, class)) => (base, Some(class)),
            None => (symbol.as_str(), None),
        };
        let base_is_valid = (1..=10).contains(&base.len()) && base.bytes().all(|b| b.is_ascii_alphanumeric());
        let class_is_valid =
            class.is_none_or(|class| (1..=2).contains(&class.len()) && class.bytes().all(|b| b.is_ascii_alphabetic()));
        if !base_is_valid || !class_is_valid {
            return None;
        }
        let numeric = base.bytes().all(|b| b.is_ascii_digit());
        if numeric && !exchange.has_numeric_codes() {
            return None;
        }
        let symbol = match (exchange, class) {
            (Exchange::HongKong, None) if numeric => base.trim_start_matches('0').to_string(),
            (Exchange::HongKong, _) => return None,
            (Exchange::Us, _) if !base.starts_with(|c: char| c.is_ascii_alphabetic()) => return None,
            (Exchange::Us, Some(class)) if Exchange::from_yahoo_suffix(class).is_some() => return None,
            (_, Some(class)) => format!("{base}.{class}"),
            (_, None) => base.to_string(),
        };
        (!symbol.is_empty()).then_some(Listing { exchange, symbol })
    }

    /// Reads a canonical key back (see [`Listing::key`]); the suffix may be in any case and HK codes may be padded.
    pub fn parse_key(key: &str) -> Option<Listing> {
        if let Some((symbol, suffix)) = key.rsplit_once('.')
            && let Some(exchange) = Exchange::from_yahoo_suffix(suffix)
        {
            return Listing::new(exchange, symbol);
        }
        Listing::new(Exchange::Us, key)
    }

    /// Canonical key for storage and subscriptions: the US symbol as is (`NOK`, `BRK.B`), otherwise symbol + Yahoo
    /// suffix (`RY.TO`, `VOD.L`, `1810.HK`, `NOKIA.HE`, `7203.T`).
    ///
    /// A key whose last `.XX` part is a Yahoo suffix is foreign, otherwise it is US (`BRK.B` is Berkshire class B).
    /// The one ambiguity: a US share class spelled like a suffix (`XYZ.V`, `XYZ.L`, `XYZ.TO`) would read as a foreign
    /// listing, so [`Listing::new`] refuses such US symbols and `parse_key(key())` round-trips for every listing.
    pub fn key(&self) -> String {
        match self.exchange.yahoo_suffix() {
            Some(suffix) => format!("{}.{suffix}", self.symbol),
            None => self.symbol.clone(),
        }
    }

    pub fn exchange(&self) -> Exchange {
        self.exchange
    }

    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Yahoo writes share classes with `-` (`BRK-B`, `RCI-B.TO`) and pads HK codes to four digits (`0700.HK`).
    pub fn yahoo_symbol(&self) -> String {
        let symbol = self.symbol.replace('.', "-");
        match (self.exchange, self.exchange.yahoo_suffix()) {
            (Exchange::HongKong, _) => format!("{symbol:0>4}.HK"),
            (_, Some(suffix)) => format!("{symbol}.{suffix}"),
            (_, None) => symbol,
        }
    }

    /// Finnhub uses the class dot (`BRK.B`) and Yahoo suffixes (`RY.TO`), i.e. the key; its free plan refuses
    /// non-US symbols, which the caller handles.
    pub fn finnhub_symbol(&self) -> String {
        self.key()
    }

    /// Alpha Vantage's own suffixes (`VOD.LON`, `RY.TRT`); `None` for markets it does not cover.
    pub fn alpha_vantage_symbol(&self) -> Option<String> {
        use Exchange::*;
        let suffix = match self.exchange {
            Us => return Some(self.symbol.clone()),
            London => "LON",
            Toronto => "TRT",
            TsxVenture => "TRV",
            Xetra => "DEX",
            Frankfurt => "FRK",
            Paris => "PAR",
            Amsterdam => "AMS",
            Lisbon => "LIS",
            Brussels => "BRU",
            Shanghai => "SHH",
            Shenzhen => "SHZ",
            IndiaBse => "BSE",
            _ => return None,
        };
        Some(format!("{}.{suffix}", self.symbol))
    }

    /// Stooq symbols are lower-case with `-` for classes and a market suffix (`brk-b.us`, `vod.uk`, `700.hk`);
    /// `None` for markets whose Stooq suffix is unverified.
    pub fn stooq_symbol(&self) -> Option<String> {
        let suffix = match self.exchange {
            Exchange::Us => "us",
            Exchange::London => "uk",
            Exchange::Xetra => "de",
            Exchange::HongKong => "hk",
            Exchange::Tokyo => "jp",
            _ => return None,
        };
        Some(format!("{}.{suffix}", self.symbol.replace('.', "-").to_ascii_lowercase()))
    }

    /// The exchange's IANA time zone, for session times and "as of" stamps.
    pub fn time_zone(&self) -> Tz {
        use Exchange::*;
        match self.exchange {
            Us => Tz::America__New_York,
            Toronto | TsxVenture | Canadian => Tz::America__Toronto,
            London => Tz::Europe__London,
            Xetra | Frankfurt => Tz::Europe__Berlin,
            Paris => Tz::Europe__Paris,
            Amsterdam => Tz::Europe__Amsterdam,
            Brussels => Tz::Europe__Brussels,
            Lisbon => Tz::Europe__Lisbon,
            Milan => Tz::Europe__Rome,
            Madrid => Tz::Europe__Madrid,
            Swiss => Tz::Europe__Zurich,
            Helsinki => Tz::Europe__Helsinki,
            Stockholm => Tz::Europe__Stockholm,
            Copenhagen => Tz::Europe__Copenhagen,
            Oslo => Tz::Europe__Oslo,
            HongKong => Tz::Asia__Hong_Kong,
            Tokyo => Tz::Asia__Tokyo,
            Australia => Tz::Australia__Sydney,
            IndiaNse | IndiaBse => Tz::Asia__Kolkata,
            Korea | KoreaKosdaq => Tz::Asia__Seoul,
            Shanghai | Shenzhen => Tz::Asia__Shanghai,
            Taiwan => Tz::Asia__Taipei,
        }
    }
}

impl Listing {
    /// The regular session in the exchange's local time (lunch breaks included).
    fn session(&self) -> (NaiveTime, NaiveTime) {
        use Exchange::*;
        let (open, close) = match self.exchange {
            Us | Toronto | TsxVenture | Canadian | HongKong => ((9, 30), (16, 0)),
            London => ((8, 0), (16, 30)),
            Frankfurt => ((8, 0), (22, 0)),
            Xetra | Paris | Amsterdam | Brussels | Lisbon | Milan | Madrid | Swiss | Stockholm => ((9, 0), (17, 30)),
            Helsinki => ((10, 0), (18, 30)),
            Copenhagen => ((9, 0), (17, 0)),
            Oslo => ((9, 0), (16, 20)),
            Tokyo | Korea | KoreaKosdaq => ((9, 0), (15, 30)),
            Australia => ((10, 0), (16, 0)),
            IndiaNse | IndiaBse => ((9, 15), (15, 30)),
            Shanghai | Shenzhen => ((9, 30), (15, 0)),
            Taiwan => ((9, 0), (13, 30)),
        };
        let time = |(hour, minute)| NaiveTime::from_hms_opt(hour, minute, 0).expect("a valid time of day");
        (time(open), time(close))
    }

    /// Whether the exchange trades at `now` (a weekday, in its session, or
    /// up to a quarter of an hour after the close). Holidays are not known: a
    /// poll on one finds the last close again, which changes nothing.
    pub fn is_trading(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone());
        let (open, close) = self.session();
        let until = close + chrono::Duration::minutes(AFTER_THE_CLOSE_MINUTES);
        !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && local.time() >= open && local.time() < until
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn listing(key: &str) -> Listing {
        Listing::parse_key(key).unwrap_or_else(|| panic!("{key} should parse"))
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn each_exchange_trades_in_its_own_hours_across_dst() {
        let us = listing("NOK");
        assert!(us.is_trading(at("2026-06-09T13:30:00Z")), "09:30 EDT on a Tuesday");
        assert!(!us.is_trading(at("2026-06-09T13:29:00Z")));
        assert!(us.is_trading(at("2026-06-09T20:14:00Z")), "just after the close");
        assert!(!us.is_trading(at("2026-06-09T20:16:00Z")));
        assert!(us.is_trading(at("2026-11-24T14:30:00Z")), "09:30 EST");
        assert!(!us.is_trading(at("2026-11-24T13:30:00Z")), "08:30 EST");
        assert!(!us.is_trading(at("2026-06-13T15:00:00Z")), "Saturday");
        let oslo = listing("EQNR.OL");
        assert!(oslo.is_trading(at("2026-11-24T08:00:00Z")), "09:00 in Oslo, before New York opens");
        assert!(!oslo.is_trading(at("2026-11-24T16:00:00Z")), "17:00 in Oslo");
        let tokyo = listing("7203.T");
        assert!(tokyo.is_trading(at("2026-11-24T01:00:00Z")), "10:00 in Tokyo");
        assert!(!tokyo.is_trading(at("2026-11-24T14:30:00Z")), "New York's morning is Tokyo's night");
        let sydney = listing("BHP.AX");
        assert!(sydney.is_trading(at("2026-11-23T23:30:00Z")), "10:30 AEDT on Tuesday is Monday in UTC");
    }

    #[test]
    fn keys_parse_to_the_expected_exchange_and_symbol() {
        let cases = [
            ("NOK", Exchange::Us, "NOK"),
            ("BRK.B", Exchange::Us, "BRK.B"),
            ("brk-b", Exchange::Us, "BRK.B"),
            ("RY.TO", Exchange::Toronto, "RY"),
            ("RCI.B.TO", Exchange::Toronto, "RCI.B"),
            ("VOD.L", Exchange::London, "VOD"),
            ("1810.HK", Exchange::HongKong, "1810"),
            ("0700.HK", Exchange::HongKong, "700"),
            ("NOKIA.HE", Exchange::Helsinki, "NOKIA"),
            ("7203.t", Exchange::Tokyo, "7203"),
            ("005930.KS", Exchange::Korea, "005930"),
        ];
        for (key, exchange, symbol) in cases {
            let parsed = listing(key);
            assert_eq!((parsed.exchange(), parsed.symbol()), (exchange, symbol), "{key}");
            assert_eq!(Listing::parse_key(&parsed.key()), Some(parsed.clone()), "{key}");
            assert_eq!(parsed.to_string(), parsed.key());
        }
    }

    #[test]
    fn provider_symbols_follow_each_provider_convention() {
        type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: [Row; 8] = [
            ("NOK", "NOK", "NOK", Some("NOK"), Some("nok.us")),
            ("BRK.B", "BRK-B", "BRK.B", Some("BRK.B"), Some("brk-b.us")),
            ("RY.TO", "RY.TO", "RY.TO", Some("RY.TRT"), None),
            ("VOD.L", "VOD.L", "VOD.L", Some("VOD.LON"), Some("vod.uk")),
            ("1810.HK", "1810.HK", "1810.HK", None, Some("1810.hk")),
            ("700.HK", "0700.HK", "700.HK", None, Some("700.hk")),
            ("NOKIA.HE", "NOKIA.HE", "NOKIA.HE", None, None),
            ("7203.T", "7203.T", "7203.T", None, Some("7203.jp")),
        ];
        for (key, yahoo, finnhub, alpha_vantage, stooq) in cases {
            let parsed = listing(key);
            assert_eq!(parsed.yahoo_symbol(), yahoo, "{key}");
            assert_eq!(parsed.finnhub_symbol(), finnhub, "{key}");
            assert_eq!(parsed.alpha_vantage_symbol().as_deref(), alpha_vantage, "{key}");
            assert_eq!(parsed.stooq_symbol().as_deref(), stooq, "{key}");
        }
        assert_eq!(listing("RCI.B.TO").yahoo_symbol(), "RCI-B.TO");
    }

    #[test]
    fn time_zones_are_the_exchange_zones() {
        assert_eq!(listing("NOK").time_zone(), Tz::America__New_York);
        assert_eq!(listing("RY.TO").time_zone(), Tz::America__Toronto);
        assert_eq!(listing("VOD.L").time_zone(), Tz::Europe__London);
        assert_eq!(listing("1810.HK").time_zone(), Tz::Asia__Hong_Kong);
        assert_eq!(listing("NOKIA.HE").time_zone(), Tz::Europe__Helsinki);
    }

    #[test]
    fn bad_symbols_are_rejected() {
        let cases = [
            (Exchange::Us, ""),
            (Exchange::Us, "2026"),
            (Exchange::Us, "1ABC"),
            (Exchange::Us, "ABCDEFGHIJK"),
            (Exchange::Us, "BRK.B.C"),
            (Exchange::Us, "BRK.BCD"),
            (Exchange::Us, "BRK.1"),
            (Exchange::Us, "BRK."),
            (Exchange::Us, ".B"),
            (Exchange::Us, "XYZ.L"),
            (Exchange::Us, "XYZ.TO"),
            (Exchange::Us, "NO K"),
            (Exchange::Us, "NÖK"),
            (Exchange::Us, "ES_F"),
            (Exchange::Toronto, "1234"),
            (Exchange::London, "2026"),
            (Exchange::HongKong, "TENCENT"),
            (Exchange::HongKong, "0000"),
            (Exchange::HongKong, "700.B"),
        ];
        for (exchange, symbol) in cases {
            assert_eq!(Listing::new(exchange, symbol), None, "{exchange:?} {symbol}");
        }
        assert_eq!(Listing::new(Exchange::Us, "brk/b").map(|l| l.key()), Some("BRK.B".into()));
        assert_eq!(Listing::new(Exchange::Tokyo, "130a").map(|l| l.key()), Some("130A.T".into()));
    }

    #[test]
    fn exchange_prefixes_ignore_case_and_spaces() {
        for prefix in ["NYSE", "Nasdaq", "NasdaqGS", "NYSE American", "nyse arca", "AMEX", "OTCMKTS", "PINK", "CBOE"] {
            assert_eq!(exchange_from_prefix(prefix), Some(Exchange::Us), "{prefix}");
        }
        assert_eq!(exchange_from_prefix("TSE"), Some(Exchange::Toronto));
        assert_eq!(exchange_from_prefix("CVE"), Some(Exchange::TsxVenture));
        assert_eq!(exchange_from_prefix("hkg"), Some(Exchange::HongKong));
        assert_eq!(exchange_from_prefix(" SZSE "), Some(Exchange::Shenzhen));
        assert_eq!(exchange_from_prefix("ANYSE"), None);
        assert_eq!(exchange_from_prefix(""), None);
    }

    fn any_exchange() -> impl Strategy<Value = Exchange> {
        prop::sample::select(
            std::iter::once(Exchange::Us)
                .chain(YAHOO_SUFFIXES.iter().map(|(exchange, _)| *exchange))
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #[test]
        fn parse_key_never_panics(key in any::<String>()) {
            if let Some(parsed) = Listing::parse_key(&key) {
                prop_assert_eq!(Listing::parse_key(&parsed.key()), Some(parsed));
            }
        }

        #[test]
        fn every_valid_listing_round_trips_through_its_key(
            exchange in any_exchange(),
            symbol in "[A-Za-z0-9]{1,10}([.\\-/][A-Za-z]{1,2})?",
        ) {
            if let Some(parsed) = Listing::new(exchange, &symbol) {
                prop_assert_eq!(Listing::parse_key(&parsed.key()), Some(parsed));
            }
        }
    }
}
