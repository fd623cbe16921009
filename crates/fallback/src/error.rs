//! The error of a fallback that failed too.

use std::fmt;

use seawall_classify::{BoxError, Class, Error};

/// The primary failed and so did the fallback: the primary's error (its class is the
/// error's class) with the fallback's failure attached.
#[derive(Debug)]
pub struct FallbackFailed {
    primary: BoxError,
    fallback: Error,
}

impl FallbackFailed {
    pub(crate) fn error(primary: Error, fallback: Error) -> Error {
        let class: Class = primary.class();
        Error::new(
            class,
            FallbackFailed {
                primary: primary.into_source(),
                fallback,
            },
        )
    }

    /// The fallback's error.
    pub fn fallback(&self) -> &Error {
        &self.fallback
    }
}

impl fmt::Display for FallbackFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (the fallback failed too: {})",
            self.primary, self.fallback
        )
    }
}

impl std::error::Error for FallbackFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.primary)
    }
}
