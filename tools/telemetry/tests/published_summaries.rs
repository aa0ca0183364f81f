//! `cost-summary.json` files published by the original harness read with this project's
//! types, and write back unchanged.

use std::path::Path;

use bench_formats::{CostSummary, SessionMetadata};
use serde_json::Value;

#[test]
fn original_harness_summaries_read_and_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published-runs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let text = std::fs::read_to_string(dir.join("cost-summary.json")).unwrap();
        let summary: CostSummary = serde_json::from_str(&text).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_value(&summary).unwrap(), original, "{dir:?}");
        assert_eq!(
            summary.total_cost_usd,
            original["totalCostUsd"].as_f64().unwrap()
        );
        assert_eq!(summary.api_calls, original["apiCalls"].as_u64().unwrap());
        assert!(summary.total_cost_usd > 0.0 && summary.api_calls > 0);
        assert!(summary.reconciliation.is_none() && summary.schema_version.is_none());

        // The metadata beside it names the same session.
        let meta: SessionMetadata = bench_formats::read_json(&dir.join("metadata.json")).unwrap();
        assert_eq!(
            meta.session_id.as_deref(),
            Some(summary.session_id.as_str())
        );
        seen += 1;
    }
    assert_eq!(seen, 3);
}
