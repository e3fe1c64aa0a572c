use std::fmt;
use std::str::FromStr;

/// How often a reader wants the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestFrequency {
    #[default]
    Daily,
    Weekly,
    Never,
}

impl DigestFrequency {
    pub const ALL: [DigestFrequency; 3] = [Self::Daily, Self::Weekly, Self::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Never => "never",
        }
    }
}

impl FromStr for DigestFrequency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "daily" => Ok(Self::Daily),
            "weekly" => Ok(Self::Weekly),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "'{}' is not a digest frequency: choose daily, weekly or never.",
                other.chars().take(20).collect::<String>()
            )),
        }
    }
}

impl fmt::Display for DigestFrequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The daily move, in percent, that triggers a price alert: 0.1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct AlertThreshold(f64);

impl AlertThreshold {
    pub const DEFAULT: AlertThreshold = AlertThreshold(5.0);

    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim().trim_end_matches('%').trim();
        let value: f64 = text.parse().map_err(|_| {
            format!("'{}' is not a number of percent, like 5 or 2.5.", text.chars().take(20).collect::<String>())
        })?;
        Self::new(value)
    }

    pub fn new(percent: f64) -> Result<Self, String> {
        if percent.is_finite() && (0.1..=100.0).contains(&percent) {
            Ok(Self(percent))
        } else {
            Err("The alert threshold must be between 0.1 and 100 percent.".into())
        }
    }

    pub fn percent(self) -> f64 {
        self.0
    }
}

impl Default for AlertThreshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for AlertThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{AlertThreshold, DigestFrequency};

    #[test]
    fn thresholds_between_a_tenth_and_a_hundred_percent_are_accepted() {
        assert_eq!(AlertThreshold::parse("2.5").unwrap().percent(), 2.5);
        assert_eq!(AlertThreshold::parse(" 7 % ").unwrap().percent(), 7.0);
        for bad in ["0", "-3", "101", "NaN", "inf", "five", ""] {
            assert!(AlertThreshold::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn frequencies_round_trip_through_their_names() {
        for frequency in DigestFrequency::ALL {
            assert_eq!(frequency.as_str().parse::<DigestFrequency>().unwrap(), frequency);
        }
        assert!("hourly".parse::<DigestFrequency>().is_err());
    }
}
