//! A value a request sent that cannot be accepted: which field, and why.
//! Each surface says it its own way (JSON naming the field, or the message on the form).

/// A field of a request that cannot be accepted, with what a person can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidField {
    pub field: &'static str,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }

    /// For `map_err` on a parser whose error is its message: names the field.
    pub fn named(field: &'static str) -> impl FnOnce(String) -> Self {
        move |message| Self { field, message }
    }
}
