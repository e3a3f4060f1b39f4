//! Identifiers: one newtype per kind of thing the core keeps books on.
//!
//! Numeric ids are handed out by the core from counters in the `State`
//! (jobs, leases, resources, workers) or chosen by the caller when the thing
//! is registered from outside (wells, factories). Resource types and targets
//! are named by strings, and a resource type's name *is* its rank: groups are
//! acquired in the lexicographic order of these names.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id after this one (ids are handed out in order). `step`
            /// refuses to hand out the last one (see `exhausted`), so
            /// `apply` never overflows.
            #[must_use]
            pub fn next(self) -> Self {
                Self(self.0.checked_add(1).expect(concat!(stringify!($name), " space exhausted")))
            }

            /// Whether handing out `n` more ids from this one would run
            /// out of the id space.
            #[must_use]
            pub fn exhausted(self, n: u32) -> bool {
                self.0.checked_add(n).is_none()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

numeric_id!(
    /// A job, numbered in submission order: a smaller id was submitted
    /// earlier, which is what FIFO per resource type compares.
    JobId,
    "job "
);
numeric_id!(
    /// One grant of a group (or, under the one-by-one mutant, of part of it)
    /// to one well.
    LeaseId,
    "lease "
);
numeric_id!(
    /// One resource instance, created for one job by one well.
    ResourceId,
    "#"
);
numeric_id!(
    /// One worker, bound to the one job it was leased for.
    WorkerId,
    "worker "
);
numeric_id!(
    /// A well, registered by an administrator.
    WellId,
    "well "
);
numeric_id!(
    /// A factory, registered by an administrator.
    FactoryId,
    "factory "
);

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            #[must_use]
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_id!(
    /// A resource type (`oxide-token`, `postgres`). Its name is its rank.
    TypeId
);
name_id!(
    /// A target: a kind of execution environment (`ubuntu-24.04`).
    TargetId
);
name_id!(
    /// A privilege that a target or a resource type may require.
    Privilege
);
