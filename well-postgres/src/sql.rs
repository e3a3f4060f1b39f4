//! The postgres well's pure parts: quoting identifiers and literals, the
//! names and comments that tag what the well makes with a resource id, the
//! rule that says which catalog entries are the well's, and the
//! `VALID UNTIL` timestamp.
//!
//! Utility statements (`CREATE ROLE`, `CREATE DATABASE`, `COMMENT ON`)
//! take no bind parameters, so names and literals go into their text and
//! must be quoted here; catalog queries bind their values instead.

use std::collections::BTreeSet;

/// What the comment on a role or database says: the resource it serves.
const TAG: &str = "aquifer resource ";

/// `name` as a quoted identifier: always quoted, so case and reserved
/// words survive, with embedded quotes doubled.
#[must_use]
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a string literal. A backslash makes it an escape string
/// (`E'...'`), which reads the same whatever `standard_conforming_strings`
/// is set to.
#[must_use]
pub fn literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// Whether `prefix` may start the names of what a well makes: lowercase
/// (so an operator can type the names unquoted), at most 40 characters
/// (a name is at most 63 bytes, and an id takes up to 10), and not ending
/// in a digit, so that where the prefix ends and the id starts is never in
/// doubt.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 40
        && prefix.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !prefix.ends_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?}: use 1 to 40 lowercase letters, digits or '_', starting with a letter or '_' and not ending in a digit"
        ))
    }
}

/// The name of the role and of the database made for `resource`.
#[must_use]
pub fn name(prefix: &str, resource: u32) -> String {
    format!("{prefix}{resource}")
}

/// The comment that tags a role or database with `resource`.
#[must_use]
pub fn tag(resource: u32) -> String {
    format!("{TAG}{resource}")
}

/// The resource a name made by [`name`] stands for, if it is one.
#[must_use]
pub fn resource_of(prefix: &str, name: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    let id: u32 = digits.parse().ok()?;
    // Only the canonical spelling: `aq_042` or `aq_+42` is someone else's.
    (id.to_string() == digits).then_some(id)
}

/// A role as the catalog shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRow {
    pub name: String,
    pub comment: Option<String>,
}

/// A database as the catalog shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseRow {
    pub name: String,
    pub comment: Option<String>,
    pub owner: String,
}

/// The resource a role stands for, if the well made it: its name and its
/// comment must agree. Only a role with CREATEROLE can change a role's
/// comment, so a job cannot disown its role.
#[must_use]
pub fn role_resource(prefix: &str, role: &RoleRow) -> Option<u32> {
    let id = resource_of(prefix, &role.name)?;
    (role.comment.as_deref() == Some(tag(id).as_str())).then_some(id)
}

/// The resource a database stands for, if the well made it: its name and
/// comment agree, or it belongs to the well's role of the same name. The
/// owner can change a database's comment, and a create that was cut short
/// may have made the database before commenting on it; ownership covers
/// both.
#[must_use]
pub fn database_resource(prefix: &str, db: &DatabaseRow, ours: &BTreeSet<u32>) -> Option<u32> {
    let id = resource_of(prefix, &db.name)?;
    let tagged = db.comment.as_deref() == Some(tag(id).as_str());
    let owned = db.owner == db.name && ours.contains(&id);
    (tagged || owned).then_some(id)
}

/// Every resource with a role or a database of the well's in the catalog.
#[must_use]
pub fn owned(prefix: &str, roles: &[RoleRow], dbs: &[DatabaseRow]) -> BTreeSet<u32> {
    let by_role: BTreeSet<u32> = roles
        .iter()
        .filter_map(|r| role_resource(prefix, r))
        .collect();
    let by_db = dbs
        .iter()
        .filter_map(|d| database_resource(prefix, d, &by_role));
    by_db.chain(by_role.iter().copied()).collect()
}

/// `deadline_ms` (ms since the Unix epoch) as a timestamp PostgreSQL reads
/// the same in any `TimeZone` or `DateStyle`: ISO 8601 in UTC.
#[must_use]
pub fn timestamp(deadline_ms: u64) -> String {
    let secs = deadline_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        deadline_ms % 1000
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: count 400-year
/// eras (146 097 days each) from 0000-03-01, so that the leap day ends a
/// year, then the year and day within the era.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // Months counted from March, so February is last.
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("aq_1"), "\"aq_1\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("aquifer resource 1"), "'aquifer resource 1'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\'b"), "E'a\\\\''b'");
    }

    #[test]
    fn prefixes_leave_no_doubt_where_the_id_starts() {
        for ok in ["aq_", "_", "ci_pg_", "x"] {
            assert_eq!(check_prefix(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Aq_", "aq-", "aq_1", "1aq", "aq\"", &"a".repeat(41)] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_tags_carry_the_resource_id() {
        assert_eq!(name("aq_", 42), "aq_42");
        assert_eq!(resource_of("aq_", "aq_42"), Some(42));
        assert_eq!(resource_of("aq_", "aq_4294967295"), Some(u32::MAX));
        for not in [
            "aq_",
            "aq_042",
            "aq_+4",
            "aq_4x",
            "aq_x_4",
            "bq_4",
            "aq_4294967296",
        ] {
            assert_eq!(resource_of("aq_", not), None, "{not}");
        }
        assert_eq!(tag(42), "aquifer resource 42");
    }

    fn role(name: &str, comment: Option<&str>) -> RoleRow {
        RoleRow {
            name: name.into(),
            comment: comment.map(String::from),
        }
    }

    fn db(name: &str, comment: Option<&str>, owner: &str) -> DatabaseRow {
        DatabaseRow {
            name: name.into(),
            comment: comment.map(String::from),
            owner: owner.into(),
        }
    }

    #[test]
    fn only_what_the_well_tagged_is_owned() {
        let roles = [
            role("aq_1", Some("aquifer resource 1")),
            role("aq_2", Some("aquifer resource 3")),
            role("aq_4", None),
            role("aq_5", Some("aquifer resource 5")),
        ];
        let dbs = [
            // Tagged, its role gone (a destroy cut short).
            db("aq_6", Some("aquifer resource 6"), "ci"),
            // Untagged but owned by the well's role (a create cut short).
            db("aq_5", None, "aq_5"),
            // Owned by a role of that name that the well did not make.
            db("aq_4", None, "aq_4"),
            db("aq_7", Some("mine"), "ci"),
        ];
        assert_eq!(owned("aq_", &roles, &dbs), BTreeSet::from([1, 5, 6]));
    }

    #[test]
    fn timestamps_are_utc_iso_8601() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(timestamp(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(timestamp(1_790_000_000_123), "2026-09-21T14:13:20.123Z");
        assert_eq!(timestamp(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }
}
