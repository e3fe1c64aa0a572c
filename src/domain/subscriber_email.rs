use std::fmt;

/// An email address a reader gave us, trimmed and lower-cased whole, so one
/// mailbox is one reader whatever the case it is typed in (as listmonk does).
///
/// Only what the mailer can send and a reader cannot be deceived by is
/// accepted: a dot-atom local part of ASCII (no SMTPUTF8, no quoted strings)
/// and a domain name (no IP literals) of two labels or more, an
/// international one in its punycode form; no whitespace, control or
/// invisible characters; at most 254 characters. So the value is always safe
/// to put in an SMTP envelope and a mail header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEmail(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("Please enter your email address.".into());
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("An email address cannot contain spaces or control characters.".into());
        }
        if trimmed.chars().any(is_invisible) {
            return Err("An email address cannot contain invisible characters (such as zero-width spaces, \
                        soft hyphens or text-direction marks)."
                .into());
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(format!("'{trimmed}' is missing an @: use the form name@example.com."));
        };
        if local.starts_with('"') {
            return Err("An email address with a quoted part before the @ cannot be accepted.".into());
        }
        if domain.starts_with('[') {
            return Err("An email address must end in a domain name, not an IP address in brackets.".into());
        }
        let not_valid = |reason: String| format!("'{trimmed}' is not a valid email address: {reason}");
        let local = parse_local_part(local).map_err(not_valid)?;
        let domain = parse_domain(domain).map_err(not_valid)?;
        let normalised = format!("{local}@{domain}");
        if normalised.len() > MAX_LEN {
            return Err(format!("An email address can be at most {MAX_LEN} characters long."));
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

/// The part before the @: a dot-atom (RFC 5322) of ASCII, lower-cased.
fn parse_local_part(local: &str) -> Result<String, String> {
    if !local.is_ascii() {
        return Err("the part before the @ can only have plain ASCII letters, digits and . ! # $ % & ' * + - / = ? \
                    ^ _ ` { | } ~ (we cannot send to other characters there)."
            .into());
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(format!("the part before the @ can be at most {MAX_LOCAL_LEN} characters long."));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.split('.').any(|atom| atom.is_empty() || !atom.chars().all(atext)) {
        return Err("before the @, use letters, digits and . ! # $ % & ' * + - / = ? ^ _ ` { | } ~, with no dot \
                    at the start or end and no two dots in a row."
            .into());
    }
    Ok(local.to_ascii_lowercase())
}

/// The part after the @: a domain name of two labels or more, as punycode
/// when it is international (IDNA), lower-cased.
fn parse_domain(domain: &str) -> Result<String, String> {
    let invalid = || {
        "after the @ comes a domain name of letters, digits and hyphens, with at least one dot, as in example.com."
            .to_string()
    };
    let ascii = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let valid_label = |label: &&str| {
        (1..=MAX_LABEL_LEN).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    // An all-digit top label is an IP address, not a domain name.
    let top_is_name = labels.last().is_some_and(|top| !top.chars().all(|c| c.is_ascii_digit()));
    if labels.len() < 2 || !labels.iter().all(valid_label) || !top_is_name {
        return Err(invalid());
    }
    Ok(ascii)
}

/// Characters that show nothing, or reorder what is shown (Unicode format
/// characters and the fillers and joiners that render as blanks): an address
/// with one could pass for another.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

#[cfg(test)]
mod tests {
    use super::SubscriberEmail;

    #[test]
    fn a_valid_address_is_trimmed_and_lower_cased_whole() {
        let email = SubscriberEmail::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ann.lee@example.com");
        assert_eq!(SubscriberEmail::parse("ANN@X.COM").unwrap(), SubscriberEmail::parse("ann@x.com").unwrap());
    }

    fn refusal(input: &str) -> String {
        SubscriberEmail::parse(input).expect_err(input)
    }

    #[test]
    fn a_quoted_local_part_is_refused() {
        assert!(refusal("\"a>b\"@x.com").contains("quot"));
        assert!(refusal("\"ann\"@example.com").contains("quot"));
    }

    #[test]
    fn a_domain_literal_is_refused() {
        assert!(refusal("lit@[127.0.0.1]").contains("domain name"));
        assert!(refusal("lit@[IPv6:::1]").contains("domain name"));
        assert!(SubscriberEmail::parse("ann@127.0.0.1").is_err(), "an IP address is not a domain name either");
    }

    #[test]
    fn invisible_zero_width_and_direction_characters_are_refused_anywhere() {
        for invisible in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{180E}',
            '\u{3164}',
            '\u{034F}',
            '\u{061C}',
            '\u{FFA0}',
            '\u{E0041}',
        ] {
            for input in [
                format!("{invisible}ann@example.com"),
                format!("an{invisible}n@example.com"),
                format!("ann@exa{invisible}mple.com"),
                format!("ann@bü{invisible}cher.example"),
                format!("ann@example.com{invisible}"),
            ] {
                let message = refusal(&input);
                assert!(message.contains("invisible"), "{input:?}: {message}");
            }
        }
    }

    #[test]
    fn a_local_part_that_is_not_ascii_is_refused() {
        assert!(refusal("jörg@example.com").contains("before the @"));
        assert!(refusal("аnn@example.com").contains("before the @"), "a Cyrillic а");
    }

    #[test]
    fn the_local_part_is_a_dot_atom_of_at_most_64_characters() {
        for good in
            ["a.b-c_d+e@example.com", "!#$%&'*+/=?^_`{|}~-@example.com", &format!("{}@example.com", "a".repeat(64))]
        {
            assert!(SubscriberEmail::parse(good).is_ok(), "{good:?}");
        }
        for bad in [".ann@example.com", "ann.@example.com", "an..n@example.com", "a(b)@example.com", "a,b@example.com"]
        {
            assert!(refusal(bad).contains("before the @"), "{bad:?}");
        }
        assert!(refusal(&format!("{}@example.com", "a".repeat(65))).contains("64"));
    }

    #[test]
    fn an_international_domain_becomes_punycode() {
        let email = SubscriberEmail::parse("Ann@Bücher.example").unwrap();
        assert_eq!(email.as_str(), "ann@xn--bcher-kva.example");
        assert_eq!(SubscriberEmail::parse("ann@xn--bcher-kva.example").unwrap(), email);
    }

    #[test]
    fn the_domain_has_two_labels_or_more_of_letters_digits_and_hyphens() {
        for bad in [
            "ann@example",
            "ann@exam_ple.com",
            "ann@-example.com",
            "ann@example-.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@example.com.",
            "ann@exa!mple.com",
        ] {
            assert!(refusal(bad).contains("after the @"), "{bad:?}");
        }
        let long_label = format!("ann@{}.com", "a".repeat(64));
        assert!(SubscriberEmail::parse(&long_label).is_err());
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
