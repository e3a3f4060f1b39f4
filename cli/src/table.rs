//! Tables for the terminal, and wire values as cells.

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

pub use aquifer_protocol::story::{cell, tagged};

/// Items joined with `, `, or `-` for none.
#[must_use]
pub fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}
