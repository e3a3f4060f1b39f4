//! The names and descriptions the oxide well gives what it makes: they
//! carry the resource id and a marker, so that what a crashed run made is
//! found again by listing the rack, not from memory.

/// Descriptions of what the well makes start with this.
const MARKER: &str = "aquifer resource ";

/// The names of one resource's things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub resource: u32,
    /// `<prefix>-<id>`: the project, the job user and, in silo mode, the
    /// silo.
    pub base: String,
    /// `<prefix>-<id>-admin`: the well's own admin in a silo it made.
    pub admin: String,
}

impl Names {
    #[must_use]
    pub fn new(prefix: &str, resource: u32) -> Names {
        let base = format!("{prefix}-{resource}");
        Names {
            resource,
            admin: format!("{base}-admin"),
            base,
        }
    }

    /// The description of a project or silo.
    #[must_use]
    pub fn description(&self) -> String {
        format!(
            "{MARKER}{}: made by an aquifer well for one job, deleted when it ends",
            self.resource
        )
    }
}

/// The resource id in a name the well gave, `<prefix>-<digits>`.
#[must_use]
pub fn resource_of(prefix: &str, name: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a description is one the well wrote: a thing of the right name
/// without it is someone else's, and the well leaves it alone.
#[must_use]
pub fn is_marked(description: &str) -> bool {
    description.starts_with(MARKER)
}

/// A random password for a local user: 256 bits, hex.
#[must_use]
pub fn password() -> String {
    use rand::Rng as _;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_not_ours() {
        let n = Names::new("aq", 17);
        assert_eq!(n.base, "aq-17");
        assert_eq!(n.admin, "aq-17-admin");
        assert_eq!(resource_of("aq", &n.base), Some(17));
        assert!(is_marked(&n.description()));
        for stranger in [
            "aq-17-admin",
            "aq-",
            "aq-+1",
            "aqx-1",
            "bq-1",
            "aq-99999999999",
        ] {
            assert_eq!(resource_of("aq", stranger), None, "{stranger}");
        }
        assert_eq!(resource_of("ci-a", "ci-a-3"), Some(3));
        assert!(!is_marked("the team's project"));
        assert_eq!(password().len(), 64);
        assert_ne!(password(), password());
    }
}
