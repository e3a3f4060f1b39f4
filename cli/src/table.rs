//! Tables for the terminal, and wire values as cells.

use serde::Serialize;
use serde_json::Value;

/// Rows under a header, borderless, columns lined up.
#[must_use]
pub fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A value as a cell, by its JSON: a string bare, nothing as `-`, anything
/// else as compact JSON.
#[must_use]
pub fn cell(v: &impl Serialize) -> String {
    match serde_json::to_value(v).unwrap_or_default() {
        Value::Null => "-".into(),
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// An enum as a person reads it, by its JSON: a name bare (`cancelled`), a
/// name with data as `name: data` (`failed: tasks`), nothing as `-`.
#[must_use]
pub fn tagged(v: &impl Serialize) -> String {
    match serde_json::to_value(v).unwrap_or_default() {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => cell(&other),
    }
}

/// Items joined with `, `, or `-` for none.
#[must_use]
pub fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aquifer_protocol::jobs::{Failure, Outcome};

    #[test]
    fn cells_show_values_as_the_json_showed_them() {
        assert_eq!(cell(&None::<u32>), "-");
        assert_eq!(cell(&"pg"), "pg");
        assert_eq!(cell(&["a", "b"]), r#"["a","b"]"#);
        assert_eq!(tagged(&Outcome::Failed(Failure::Tasks)), "failed: tasks");
        assert_eq!(tagged(&Outcome::TimedOut), "timed_out");
        assert_eq!(tagged(&None::<Outcome>), "-");
    }
}
