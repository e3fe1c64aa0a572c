use std::fmt;

/// An email address a reader gave us, trimmed, with its domain lower-cased.
///
/// Only addr-spec addresses (`local@domain`) of at most 254 characters with no
/// whitespace or control characters are accepted, so the value is always safe
/// to put in an SMTP envelope and a mail header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEmail(String);

const MAX_LEN: usize = 254;

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("Please enter your email address.".into());
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("An email address cannot contain spaces or control characters.".into());
        }
        if trimmed.len() > MAX_LEN {
            return Err(format!("An email address can be at most {MAX_LEN} characters long."));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(format!("'{trimmed}' is missing an @: use the form name@example.com."));
        };
        let normalised = format!("{local}@{}", domain.to_ascii_lowercase());
        // lettre's parser implements the RFC 5321/5322 addr-spec rules, including
        // quoted local parts and domain literals.
        if normalised.parse::<lettre::Address>().is_err() || !domain.contains(['.', '[']) {
            return Err(format!("'{trimmed}' is not a valid email address."));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriberEmail;

    #[test]
    fn a_valid_address_is_trimmed_and_its_domain_lower_cased() {
        let email = SubscriberEmail::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Ann.Lee@example.com");
    }

    #[test]
    fn addresses_that_are_not_addr_spec_are_rejected() {
        for bad in [
            "",
            "   ",
            "ann",
            "@example.com",
            "ann@",
            "ann@@example.com",
            "ann@example",
            "ann lee@example.com",
            "ann@exa mple.com",
            "ann\r\nBcc: x@example.com@example.com",
            "ann\u{0}@example.com",
            "ann\t@example.com",
            "Ann <ann@example.com>",
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_address_longer_than_254_characters_is_rejected() {
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert!(SubscriberEmail::parse(&long).is_err());
    }

    #[test]
    fn plus_addressing_and_subdomains_are_accepted() {
        assert!(SubscriberEmail::parse("ann+stocks@mail.example.co.uk").is_ok());
    }
}
