//! Splitting an export request by agent session.
//!
//! A record is filed under the session the shared rule names
//! ([`bench_formats::attribution::Tags::owner`]: its own `session.id`, else its resource's,
//! else its own `run.id`, else its resource's), or under [`UNATTRIBUTED`] when it has no
//! tag. Each session's part keeps the resource and scope its records came with, in arrival
//! order.

use std::collections::HashMap;

use bench_formats::attribution::{RUN_ID, SESSION_ID, Tags};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
    metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Key of the records no attribute ties to a session or run.
pub const UNATTRIBUTED: &str = "unattributed";

/// Longest key kept (longer ones are cut): a folder name, not a document.
const MAX_KEY_LEN: usize = 128;

/// A session key made safe as one folder name: characters outside `[A-Za-z0-9._-]` become
/// `_`; empty, `.` and `..` become `_`; at most 128 characters.
pub fn sanitize_key(key: &str) -> String {
    let mut out: String = key
        .chars()
        .take(MAX_KEY_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        out = "_".into();
    }
    out
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// A resource's own tags: what its records without tags of their own fall back to.
fn resource_tags(resource: Option<&Resource>) -> Tags<'_> {
    let attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
    Tags {
        resource_session: attribute(attrs, SESSION_ID),
        resource_run: attribute(attrs, RUN_ID),
        ..Tags::default()
    }
}

/// The folder key of a record with these attributes, coming from a resource with these tags.
fn record_key(attributes: &[KeyValue], resource: Tags<'_>) -> String {
    let tags = Tags {
        record_session: attribute(attributes, SESSION_ID),
        record_run: attribute(attributes, RUN_ID),
        ..resource
    };
    sanitize_key(tags.owner().unwrap_or(UNATTRIBUTED))
}

/// Items grouped by key, keys in order of first appearance, items in their order.
fn group<T: Clone>(items: &[T], key_of: impl Fn(&T) -> String) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for item in items {
        let key = key_of(item);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(item.clone()),
            None => groups.push((key, vec![item.clone()])),
        }
    }
    groups
}

/// One session's share of a request, plus where in the request its last records came from
/// (so records of the same resource and scope stay together).
struct Share<R> {
    request: R,
    last_resource: Option<usize>,
    last_scope: Option<(usize, usize)>,
    records: usize,
}

struct Shares<R> {
    order: Vec<String>,
    by_key: HashMap<String, Share<R>>,
}

impl<R: Default> Shares<R> {
    fn new() -> Self {
        Shares {
            order: Vec::new(),
            by_key: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> &mut Share<R> {
        if !self.by_key.contains_key(key) {
            self.order.push(key.to_string());
        }
        self.by_key.entry(key.to_string()).or_insert_with(|| Share {
            request: R::default(),
            last_resource: None,
            last_scope: None,
            records: 0,
        })
    }

    fn finish(mut self) -> Vec<SessionPart<R>> {
        self.order
            .into_iter()
            .filter_map(|key| {
                let share = self.by_key.remove(&key)?;
                Some(SessionPart {
                    key,
                    request: share.request,
                    records: share.records,
                })
            })
            .collect()
    }
}

/// The records of one session within one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPart<R> {
    /// Sanitized session key.
    pub key: String,
    /// A request holding only this session's records, with their resources and scopes.
    pub request: R,
    /// Log records or data points in it.
    pub records: usize,
}

/// Split a logs request by session.
pub fn split_logs(req: &ExportLogsServiceRequest) -> Vec<SessionPart<ExportLogsServiceRequest>> {
    let mut shares: Shares<ExportLogsServiceRequest> = Shares::new();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let resource = resource_tags(rl.resource.as_ref());
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            for (key, records) in group(&sl.log_records, |r| record_key(&r.attributes, resource)) {
                let share = shares.get(&key);
                if share.last_resource != Some(ri) {
                    share.request.resource_logs.push(ResourceLogs {
                        resource: rl.resource.clone(),
                        scope_logs: Vec::new(),
                        schema_url: rl.schema_url.clone(),
                    });
                    share.last_resource = Some(ri);
                }
                let Some(target) = share.request.resource_logs.last_mut() else {
                    continue;
                };
                if share.last_scope != Some((ri, si)) {
                    target.scope_logs.push(ScopeLogs {
                        scope: sl.scope.clone(),
                        log_records: Vec::new(),
                        schema_url: sl.schema_url.clone(),
                    });
                    share.last_scope = Some((ri, si));
                }
                share.records += records.len();
                if let Some(scope) = target.scope_logs.last_mut() {
                    scope.log_records.extend(records);
                }
            }
        }
    }
    shares.finish()
}

/// A metric cut into per-session metrics, each holding only that session's data points.
fn split_metric(m: &Metric, resource: Tags<'_>) -> Vec<(String, Metric, usize)> {
    let with = |data: metric::Data| Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data: Some(data),
    };
    let key = |attrs: &[KeyValue]| record_key(attrs, resource);
    let parts: Vec<(String, Metric, usize)> = match &m.data {
        None => Vec::new(),
        Some(metric::Data::Gauge(g)) => group(&g.data_points, |p| key(&p.attributes))
            .into_iter()
            .map(|(k, pts)| {
                let n = pts.len();
                (k, with(metric::Data::Gauge(Gauge { data_points: pts })), n)
            })
            .collect(),
        Some(metric::Data::Sum(s)) => group(&s.data_points, |p| key(&p.attributes))
            .into_iter()
            .map(|(k, pts)| {
                let n = pts.len();
                let sum = Sum {
                    data_points: pts,
                    aggregation_temporality: s.aggregation_temporality,
                    is_monotonic: s.is_monotonic,
                };
                (k, with(metric::Data::Sum(sum)), n)
            })
            .collect(),
        Some(metric::Data::Histogram(h)) => group(&h.data_points, |p| key(&p.attributes))
            .into_iter()
            .map(|(k, pts)| {
                let n = pts.len();
                let hist = Histogram {
                    data_points: pts,
                    aggregation_temporality: h.aggregation_temporality,
                };
                (k, with(metric::Data::Histogram(hist)), n)
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(h)) => {
            group(&h.data_points, |p| key(&p.attributes))
                .into_iter()
                .map(|(k, pts)| {
                    let n = pts.len();
                    let hist = ExponentialHistogram {
                        data_points: pts,
                        aggregation_temporality: h.aggregation_temporality,
                    };
                    (k, with(metric::Data::ExponentialHistogram(hist)), n)
                })
                .collect()
        }
        Some(metric::Data::Summary(s)) => group(&s.data_points, |p| key(&p.attributes))
            .into_iter()
            .map(|(k, pts)| {
                let n = pts.len();
                (
                    k,
                    with(metric::Data::Summary(Summary { data_points: pts })),
                    n,
                )
            })
            .collect(),
    };
    if parts.is_empty() {
        // No data points to attribute: the metric goes with its resource.
        vec![(record_key(&[], resource), m.clone(), 0)]
    } else {
        parts
    }
}

/// Split a metrics request by session.
pub fn split_metrics(
    req: &ExportMetricsServiceRequest,
) -> Vec<SessionPart<ExportMetricsServiceRequest>> {
    let mut shares: Shares<ExportMetricsServiceRequest> = Shares::new();
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        let resource = resource_tags(rm.resource.as_ref());
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            for m in &sm.metrics {
                for (key, part, points) in split_metric(m, resource) {
                    let share = shares.get(&key);
                    if share.last_resource != Some(ri) {
                        share.request.resource_metrics.push(ResourceMetrics {
                            resource: rm.resource.clone(),
                            scope_metrics: Vec::new(),
                            schema_url: rm.schema_url.clone(),
                        });
                        share.last_resource = Some(ri);
                    }
                    let Some(target) = share.request.resource_metrics.last_mut() else {
                        continue;
                    };
                    if share.last_scope != Some((ri, si)) {
                        target.scope_metrics.push(ScopeMetrics {
                            scope: sm.scope.clone(),
                            metrics: Vec::new(),
                            schema_url: sm.schema_url.clone(),
                        });
                        share.last_scope = Some((ri, si));
                    }
                    share.records += points;
                    if let Some(scope) = target.scope_metrics.last_mut() {
                        scope.metrics.push(part);
                    }
                }
            }
        }
    }
    shares.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
        }
    }

    fn record(n: u64, attrs: Vec<KeyValue>) -> LogRecord {
        LogRecord {
            time_unix_nano: n,
            attributes: attrs,
            ..Default::default()
        }
    }

    #[test]
    fn keys_are_folder_safe() {
        assert_eq!(sanitize_key("20cf6aec-c3e5.x_y"), "20cf6aec-c3e5.x_y");
        assert_eq!(sanitize_key("../etc/passwd"), ".._etc_passwd");
        assert_eq!(sanitize_key(".."), "_");
        assert_eq!(sanitize_key(""), "_");
        assert_eq!(sanitize_key("a b/ü"), "a_b__");
        assert_eq!(sanitize_key(&"x".repeat(500)).len(), 128);
    }

    #[test]
    fn record_attribute_wins_then_resource_session_then_run() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("run.id", "run-a"), kv("session.id", "res-s")],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![
                            record(1, vec![kv("session.id", "s1")]),
                            record(2, vec![]),
                            record(3, vec![kv("session.id", "s1")]),
                        ],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("run.id", "run-b")],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![record(4, vec![])],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![record(5, vec![kv("session.id", "  ")])],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                },
            ],
        };
        let parts = split_logs(&req);
        let summary: Vec<(String, Vec<u64>)> = parts
            .iter()
            .map(|p| {
                let times = p
                    .request
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records)
                    .map(|r| r.time_unix_nano)
                    .collect();
                (p.key.clone(), times)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("s1".to_string(), vec![1, 3]),
                ("res-s".to_string(), vec![2]),
                ("run-b".to_string(), vec![4]),
                (UNATTRIBUTED.to_string(), vec![5]),
            ]
        );
        // Each part keeps its resource.
        assert_eq!(
            parts[2].request.resource_logs[0].resource,
            req.resource_logs[1].resource
        );
        assert_eq!(parts[0].records, 2);
    }

    #[test]
    fn a_record_run_id_comes_before_its_resource_run_id() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("run.id", "run-res")],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record(1, vec![kv("run.id", "run-rec")]), record(2, vec![])],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        };
        let keys: Vec<(String, usize)> = split_logs(&req)
            .into_iter()
            .map(|p| (p.key, p.records))
            .collect();
        assert_eq!(
            keys,
            vec![("run-rec".to_string(), 1), ("run-res".to_string(), 1)]
        );
    }
}
