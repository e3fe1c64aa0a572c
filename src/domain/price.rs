//! What a price can be: within a range no listed share leaves, and in the
//! major unit of its currency.

/// A share below a millionth of a unit, or above a billion, is a provider's or
/// a pipeline's mistake (`5e-324`, `1e308`), not a price; the bounds also keep
/// every sum and ratio of two prices finite.
const MIN_PRICE: f64 = 1e-6;
const MAX_PRICE: f64 = 1e9;

/// `value` if it is a price that can be true.
pub fn plausible_price(value: f64) -> Option<f64> {
    (value.is_finite() && (MIN_PRICE..=MAX_PRICE).contains(&value)).then_some(value)
}

/// The range [`plausible_price`] accepts, for messages.
pub fn plausible_range() -> String {
    format!("from {MIN_PRICE} to {MAX_PRICE:.0}")
}

/// A currency code as providers send it, as the ISO code of its major unit
/// and what a price in it is divided by. London quotes in pence (`GBp`,
/// `GBX`), Johannesburg in cents (`ZAc`), Tel Aviv in agorot (`ILA`). Case
/// matters where Yahoo uses it: `GBp` is pence, `GBP` pounds. `None` for
/// anything but three letters.
pub fn major_unit(code: &str) -> Option<(String, f64)> {
    if !(code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic())) {
        return None;
    }
    let minor = match code {
        "GBp" => Some("GBP"),
        "ZAc" => Some("ZAR"),
        _ if code.eq_ignore_ascii_case("GBX") => Some("GBP"),
        _ if code.eq_ignore_ascii_case("ILA") => Some("ILS"),
        _ => None,
    };
    Some(match minor {
        Some(major) => (major.to_string(), 100.0),
        None => (code.to_ascii_uppercase(), 1.0),
    })
}

/// `value` in a unit `divisor` times larger, without the float noise of the
/// division (`68.12 / 100` is `0.6812000000000001`).
pub fn in_major_unit(value: f64, divisor: f64) -> f64 {
    if divisor == 1.0 { value } else { round_to(value / divisor, 8) }
}

/// Rounds away float noise (`5.78000020980835`, `0.33999999999999986`) to `decimals` places.
pub fn round_to(value: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(decimals.min(8) as i32);
    (value * scale).round() / scale
}

/// How many decimals `value` is written with (`5.83`: 2).
pub fn decimals(value: f64) -> u32 {
    let written = value.to_string();
    written.split_once('.').map_or(0, |(_, fraction)| fraction.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prices_a_share_can_have_are_plausible() {
        for absurd in [0.0, -5.83, 5e-324, 1e308, 1.7e308, f64::NAN, f64::INFINITY, 2e9] {
            assert_eq!(plausible_price(absurd), None, "{absurd}");
        }
        for fine in [5.83, 0.0001, 712_345.5] {
            assert_eq!(plausible_price(fine), Some(fine));
        }
    }

    #[test]
    fn pence_cents_and_agorot_become_pounds_rand_and_shekels() {
        assert_eq!(major_unit("GBp"), Some(("GBP".into(), 100.0)));
        assert_eq!(major_unit("GBX"), Some(("GBP".into(), 100.0)));
        assert_eq!(major_unit("gbx"), Some(("GBP".into(), 100.0)));
        assert_eq!(major_unit("ZAc"), Some(("ZAR".into(), 100.0)));
        assert_eq!(major_unit("ILA"), Some(("ILS".into(), 100.0)));
        assert_eq!(major_unit("GBP"), Some(("GBP".into(), 1.0)), "case matters: GBP is pounds");
        assert_eq!(major_unit("usd"), Some(("USD".into(), 1.0)));
        assert_eq!(major_unit("US$"), None);
        assert_eq!(major_unit("POUNDS"), None);
        assert_eq!(in_major_unit(68.12, 100.0), 0.6812);
        assert_eq!(in_major_unit(5.83, 1.0), 5.83);
        assert_eq!((decimals(5.83), decimals(120.0), decimals(0.6812)), (2, 0, 4));
    }
}
