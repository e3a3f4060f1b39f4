//! Time, as the core sees it: a number of milliseconds handed in by the
//! caller. The core never reads a clock; `now` is a parameter of `step`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An instant, in milliseconds since an epoch the caller chooses (the
/// server uses the Unix epoch; the model starts at zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);

    /// `self` plus a span, saturating rather than wrapping: a deadline past
    /// the end of time is simply never reached.
    #[must_use]
    pub fn plus_ms(self, span_ms: u64) -> Time {
        Time(self.0.saturating_add(span_ms))
    }

    #[must_use]
    pub fn ms(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}ms", self.0)
    }
}
