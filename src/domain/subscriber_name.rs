/// A reader's optional first name: control characters removed, whitespace
/// collapsed, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriberName(String);

const MAX_CHARS: usize = 100;

impl SubscriberName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let cleaned: String = input
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if cleaned.chars().count() > MAX_CHARS {
            return Err(format!("A name can be at most {MAX_CHARS} characters long."));
        }
        Ok(Self(cleaned))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriberName;

    #[test]
    fn control_characters_are_stripped_and_spaces_collapsed() {
        let name = SubscriberName::parse("  Ann\r\n\u{7}  Lee\t ").unwrap();
        assert_eq!(name.as_str(), "Ann Lee");
    }

    #[test]
    fn a_name_longer_than_100_characters_is_rejected() {
        assert!(SubscriberName::parse(&"ä".repeat(100)).is_ok());
        assert!(SubscriberName::parse(&"ä".repeat(101)).is_err());
    }

    #[test]
    fn an_empty_name_is_allowed() {
        assert!(SubscriberName::parse("   ").unwrap().is_empty());
    }
}
