//! How a scenario shows its figures: a table for people, then one JSON
//! object on the last line for scripts (snake_case keys, the unit last).

use serde_json::{Map, Value};
use std::time::Duration;

/// The figures of one scenario, in the order they were added.
#[derive(Default)]
pub struct Figures {
    rows: Vec<(String, String)>,
    json: Map<String, Value>,
}

impl Figures {
    pub fn new(scenario: &str) -> Figures {
        let mut f = Figures::default();
        f.json.insert("scenario".into(), scenario.into());
        f
    }

    /// A figure: `key` in the JSON (snake_case, unit last), `label` in the
    /// table.
    pub fn add(&mut self, key: &str, label: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        let shown = match &value {
            Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.abs() >= 100.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.2}")
                }
            }
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.rows.push((label.to_string(), shown));
        self.json.insert(key.to_string(), value);
        self
    }

    /// A number rounded to what its measurement can tell.
    pub fn add_f(&mut self, key: &str, label: &str, value: f64) -> &mut Self {
        let rounded = (value * 1000.0).round() / 1000.0;
        self.add(key, label, rounded)
    }

    /// The p50 and p99 of `samples` (milliseconds) as `<prefix>_p50_ms`
    /// and `<prefix>_p99_ms`.
    pub fn add_percentiles(&mut self, prefix: &str, label: &str, samples: &[f64]) -> &mut Self {
        let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
        self.add_f(
            &format!("{prefix}_p50_ms"),
            &format!("{label} p50 (ms)"),
            p50,
        );
        self.add_f(
            &format!("{prefix}_p99_ms"),
            &format!("{label} p99 (ms)"),
            p99,
        )
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<f64> {
        self.json.get(key).and_then(Value::as_f64)
    }

    /// Prints the table, then the JSON object as the last line.
    pub fn print(&self) {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        println!();
        for (label, value) in &self.rows {
            println!("  {label:<width$}  {value:>12}");
        }
        println!("{}", Value::Object(self.json.clone()));
    }
}

/// The `p` quantile (0 to 1) of `samples` by the nearest rank; NaN when
/// there are none.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        assert_eq!(percentile(&samples, 0.50), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&samples, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_last_line_is_the_json_of_every_figure() {
        let mut f = Figures::new("x");
        f.add_f("jobs_per_s", "jobs/s", 1234.5678).add_percentiles(
            "start",
            "start",
            &[1.0, 2.0, 3.0],
        );
        assert_eq!(f.get("jobs_per_s"), Some(1234.568));
        assert_eq!(f.get("start_p50_ms"), Some(2.0));
        assert_eq!(f.get("start_p99_ms"), Some(3.0));
    }
}
