//! Totals of the `claude_code.cost.usage` and `claude_code.token.usage` metrics.
//!
//! A delta series (temporality 1) exports what happened since the previous export: its
//! points add up. A cumulative series (temporality 2) exports a running total since its
//! start time: only its latest value counts, except that the running total restarts when
//! the process restarts (a new start time) or the counter is reset (the value drops), in
//! which case the value reached before the restart is kept and the new run is added.

use std::collections::{BTreeMap, BTreeSet};

use crate::otlp::Temporality;
use crate::scan::{MetricKind, MetricPoint};

/// Token counts and cost from one slice of the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Amounts {
    pub cost_usd: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub cache_read_tokens: f64,
    pub cache_creation_tokens: f64,
}

/// The session's metric totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricTotals {
    pub points: u64,
    pub series: u64,
    pub total: Amounts,
    pub per_model: BTreeMap<String, Amounts>,
    pub temporalities: BTreeSet<&'static str>,
    /// Restarts of cumulative series (new start time or a drop in value).
    pub restarts: u64,
    /// Token `type` values this crate does not know (not added to any total).
    pub unknown_token_types: BTreeSet<String>,
    /// Whether any cost point was seen.
    pub has_cost: bool,
    /// Whether any token point was seen.
    pub has_tokens: bool,
}

/// The total a series contributes, given its points.
fn series_total(points: &mut [&MetricPoint], restarts: &mut u64) -> f64 {
    let Some(first) = points.first() else {
        return 0.0;
    };
    match first.temporality {
        Temporality::Delta | Temporality::Unspecified => {
            points.sort_by_key(|p| (p.time_ns, p.start_ns));
            points.iter().map(|p| p.value).fold(0.0, |a, b| a + b)
        }
        Temporality::Cumulative | Temporality::Gauge => {
            points.sort_by_key(|p| (p.time_ns, p.start_ns));
            let mut total = 0.0;
            let mut start = points[0].start_ns;
            let mut last = points[0].value;
            for p in &points[1..] {
                if p.start_ns != start || p.value < last {
                    *restarts += 1;
                    total += last;
                    start = p.start_ns;
                }
                last = p.value;
            }
            total + last
        }
    }
}

fn add(amounts: &mut Amounts, kind: MetricKind, token_type: Option<&str>, v: f64) -> bool {
    match kind {
        MetricKind::Cost => amounts.cost_usd += v,
        MetricKind::Tokens => match token_type {
            Some("input") => amounts.input_tokens += v,
            Some("output") => amounts.output_tokens += v,
            Some("cacheRead") | Some("cache_read") => amounts.cache_read_tokens += v,
            Some("cacheCreation") | Some("cache_creation") => amounts.cache_creation_tokens += v,
            _ => return false,
        },
    }
    true
}

/// Adds up the session's cost and token metrics.
pub fn aggregate(points: &[MetricPoint]) -> MetricTotals {
    let mut out = MetricTotals {
        points: points.len() as u64,
        ..MetricTotals::default()
    };
    let mut by_series: BTreeMap<u32, Vec<&MetricPoint>> = BTreeMap::new();
    for p in points {
        by_series.entry(p.series).or_default().push(p);
        out.temporalities.insert(p.temporality.as_str());
        match p.kind {
            MetricKind::Cost => out.has_cost = true,
            MetricKind::Tokens => out.has_tokens = true,
        }
    }
    out.series = by_series.len() as u64;
    for (_, mut series) in by_series {
        let first = series[0];
        let (kind, token_type, model) = (first.kind, first.token_type.clone(), first.model.clone());
        let v = series_total(&mut series, &mut out.restarts);
        if add(&mut out.total, kind, token_type.as_deref(), v) {
            let model = model.unwrap_or_else(|| "unknown".to_string());
            add(
                out.per_model.entry(model).or_default(),
                kind,
                token_type.as_deref(),
                v,
            );
        } else if let Some(t) = token_type {
            out.unknown_token_types.insert(t);
        } else {
            out.unknown_token_types.insert("(none)".to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(temporality: Temporality, start: u64, time: u64, value: f64) -> MetricPoint {
        MetricPoint {
            kind: MetricKind::Cost,
            token_type: None,
            model: Some("m".into()),
            series: 0,
            temporality,
            start_ns: start,
            time_ns: time,
            value,
        }
    }

    #[test]
    fn delta_points_add_up() {
        let pts = vec![
            point(Temporality::Delta, 0, 2, 0.25),
            point(Temporality::Delta, 2, 3, 0.5),
        ];
        assert_eq!(aggregate(&pts).total.cost_usd, 0.75);
    }

    #[test]
    fn cumulative_takes_the_last_value_and_survives_restarts() {
        let pts = vec![
            point(Temporality::Cumulative, 1, 3, 0.5),
            point(Temporality::Cumulative, 1, 2, 0.25),
            point(Temporality::Cumulative, 1, 4, 1.0),
            // Process restarted: new start time, counting from zero again.
            point(Temporality::Cumulative, 10, 11, 0.25),
            point(Temporality::Cumulative, 10, 12, 0.5),
            // Reset without a new start time: the value drops.
            point(Temporality::Cumulative, 10, 13, 0.125),
        ];
        let t = aggregate(&pts);
        assert_eq!(t.total.cost_usd, 1.0 + 0.5 + 0.125);
        assert_eq!(t.restarts, 2);
        assert_eq!(t.per_model["m"].cost_usd, 1.625);
    }
}
