//! The error of an injected fault.

use std::fmt;

use seawall_classify::Class;

/// The error a [`Chaos`](crate::Chaos) service injects, wrapped in a [`seawall_classify::Error`] with the
/// configured class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    pub(crate) class: Class,
}

impl InjectedFault {
    /// The class it was injected with.
    #[must_use]
    pub fn class(&self) -> Class {
        self.class
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault ({})", self.class)
    }
}

impl std::error::Error for InjectedFault {}
