//! The runtime form of the language that scanning and the engine run:
//! three-valued truth.

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Cannot be decided from this bundle.
    Unknown,
}

impl Truth {
    /// `True` or `False`.
    pub fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }

    /// The negation: unknown stays unknown.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}
