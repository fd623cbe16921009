//! The error every Seawall layer returns for a configuration that cannot work.

use std::borrow::Cow;
use std::fmt;

/// A layer configuration that cannot work, found when the layer is built (never during a
/// request). It names the layer and the field, and says what is wrong.
///
/// ```
/// use seawall_core::ConfigError;
///
/// let err = ConfigError::new("concurrency limit", "max", "must be at least 1");
/// assert_eq!(err.field(), "max");
/// assert_eq!(err.to_string(), "invalid concurrency limit configuration: `max` must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    layer: &'static str,
    field: &'static str,
    problem: Cow<'static, str>,
}

impl ConfigError {
    /// A configuration error of `layer`'s `field`, with `problem` saying what is wrong.
    pub fn new(
        layer: &'static str,
        field: &'static str,
        problem: impl Into<Cow<'static, str>>,
    ) -> Self {
        ConfigError {
            layer,
            field,
            problem: problem.into(),
        }
    }

    /// The layer whose configuration is wrong, such as `"attempt timeout"`.
    #[must_use]
    pub fn layer(&self) -> &'static str {
        self.layer
    }

    /// The field that is wrong, as named by the layer's setter.
    #[must_use]
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    #[must_use]
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} configuration: `{}` {}",
            self.layer, self.field, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}
