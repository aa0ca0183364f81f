//! OTLP/JSON export requests, as the OpenTelemetry Collector's file exporter writes them.
//!
//! The types borrow from the input line wherever the JSON text allows (strings without
//! escapes), and only the fields this crate reads are typed; everything else is skipped by
//! the parser without being built. Numbers are read leniently: the OTLP/JSON mapping writes
//! 64-bit integers as strings, but some exporters write plain numbers, and doubles may be
//! strings (`"NaN"`, `"Infinity"`). Both the camelCase names of the specification and the
//! snake_case names of protobuf's original field names are accepted.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

/// One line of a collector file: an `ExportLogsServiceRequest`, an
/// `ExportMetricsServiceRequest`, or (rarely) something else such as traces.
#[derive(Debug, Default, Deserialize)]
pub struct ExportLine<'a> {
    #[serde(borrow, default, rename = "resourceLogs", alias = "resource_logs")]
    pub resource_logs: Option<Vec<ResourceLogs<'a>>>,
    #[serde(
        borrow,
        default,
        rename = "resourceMetrics",
        alias = "resource_metrics"
    )]
    pub resource_metrics: Option<Vec<ResourceMetrics<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Resource<'a> {
    #[serde(borrow, default)]
    pub attributes: Vec<KeyValue<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceLogs<'a> {
    #[serde(borrow, default)]
    pub resource: Option<Resource<'a>>,
    #[serde(
        borrow,
        default,
        rename = "scopeLogs",
        alias = "scope_logs",
        alias = "instrumentationLibraryLogs"
    )]
    pub scope_logs: Vec<ScopeLogs<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ScopeLogs<'a> {
    #[serde(borrow, default, rename = "logRecords", alias = "log_records")]
    pub log_records: Vec<LogRecord<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogRecord<'a> {
    #[serde(default, rename = "timeUnixNano", alias = "time_unix_nano")]
    pub time_unix_nano: Option<LenientU64>,
    #[serde(
        default,
        rename = "observedTimeUnixNano",
        alias = "observed_time_unix_nano"
    )]
    pub observed_time_unix_nano: Option<LenientU64>,
    /// Newer OTLP versions carry the event name in a field of its own.
    #[serde(borrow, default, rename = "eventName", alias = "event_name")]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub body: Option<AnyValue<'a>>,
    #[serde(borrow, default)]
    pub attributes: Vec<KeyValue<'a>>,
}

impl LogRecord<'_> {
    /// The record's time: `timeUnixNano` when set (non-zero), else the observed time.
    pub fn time_ns(&self) -> Option<u64> {
        self.time_unix_nano
            .map(|t| t.0)
            .filter(|&t| t > 0)
            .or_else(|| self.observed_time_unix_nano.map(|t| t.0).filter(|&t| t > 0))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceMetrics<'a> {
    #[serde(borrow, default)]
    pub resource: Option<Resource<'a>>,
    #[serde(
        borrow,
        default,
        rename = "scopeMetrics",
        alias = "scope_metrics",
        alias = "instrumentationLibraryMetrics"
    )]
    pub scope_metrics: Vec<ScopeMetrics<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ScopeMetrics<'a> {
    #[serde(borrow, default)]
    pub metrics: Vec<Metric<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metric<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub sum: Option<Sum<'a>>,
    #[serde(borrow, default)]
    pub gauge: Option<Gauge<'a>>,
    /// Histograms are not used for cost; their data points are counted, not read.
    #[serde(default)]
    pub histogram: Option<Points>,
    #[serde(
        default,
        rename = "exponentialHistogram",
        alias = "exponential_histogram"
    )]
    pub exponential_histogram: Option<Points>,
    #[serde(default)]
    pub summary: Option<Points>,
}

impl<'a> Metric<'a> {
    /// The number data points (sum or gauge) and the sum's temporality.
    pub fn number_points(&self) -> (&[NumberDataPoint<'a>], Temporality) {
        if let Some(sum) = &self.sum {
            (
                &sum.data_points,
                sum.aggregation_temporality.unwrap_or_default(),
            )
        } else if let Some(gauge) = &self.gauge {
            (&gauge.data_points, Temporality::Gauge)
        } else {
            (&[], Temporality::Unspecified)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Sum<'a> {
    #[serde(
        default,
        rename = "aggregationTemporality",
        alias = "aggregation_temporality"
    )]
    pub aggregation_temporality: Option<Temporality>,
    #[serde(borrow, default, rename = "dataPoints", alias = "data_points")]
    pub data_points: Vec<NumberDataPoint<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Gauge<'a> {
    #[serde(borrow, default, rename = "dataPoints", alias = "data_points")]
    pub data_points: Vec<NumberDataPoint<'a>>,
}

/// Data points of a metric kind this crate does not read (only skipped).
#[derive(Debug, Default, Deserialize)]
pub struct Points {
    #[serde(default, rename = "dataPoints", alias = "data_points")]
    pub data_points: Vec<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NumberDataPoint<'a> {
    #[serde(borrow, default)]
    pub attributes: Vec<KeyValue<'a>>,
    #[serde(default, rename = "startTimeUnixNano", alias = "start_time_unix_nano")]
    pub start_time_unix_nano: Option<LenientU64>,
    #[serde(default, rename = "timeUnixNano", alias = "time_unix_nano")]
    pub time_unix_nano: Option<LenientU64>,
    #[serde(default, rename = "asDouble", alias = "as_double")]
    pub as_double: Option<LenientF64>,
    #[serde(default, rename = "asInt", alias = "as_int")]
    pub as_int: Option<LenientI64>,
}

impl NumberDataPoint<'_> {
    pub fn value(&self) -> Option<f64> {
        self.as_double
            .map(|v| v.0)
            .or_else(|| self.as_int.map(|v| v.0 as f64))
    }
}

/// `AGGREGATION_TEMPORALITY_*`, as a number or as the enum's name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Temporality {
    #[default]
    Unspecified,
    Delta,
    Cumulative,
    /// Not a sum at all: a gauge's points are instantaneous values.
    Gauge,
}

impl Temporality {
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Unspecified => "unspecified",
            Temporality::Delta => "delta",
            Temporality::Cumulative => "cumulative",
            Temporality::Gauge => "gauge",
        }
    }
}

impl<'de> Deserialize<'de> for Temporality {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Temporality;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an aggregation temporality (number or name)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Temporality, E> {
                Ok(match v {
                    1 => Temporality::Delta,
                    2 => Temporality::Cumulative,
                    _ => Temporality::Unspecified,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Temporality, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Temporality, E> {
                Ok(match v {
                    "AGGREGATION_TEMPORALITY_DELTA" | "1" => Temporality::Delta,
                    "AGGREGATION_TEMPORALITY_CUMULATIVE" | "2" => Temporality::Cumulative,
                    _ => Temporality::Unspecified,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyValue<'a> {
    #[serde(borrow, default)]
    pub key: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Option<AnyValue<'a>>,
}

/// An attribute value or a log body. Exactly one field is set in well-formed input.
#[derive(Debug, Default, Deserialize)]
pub struct AnyValue<'a> {
    #[serde(borrow, default, rename = "stringValue", alias = "string_value")]
    pub string_value: Option<Cow<'a, str>>,
    #[serde(default, rename = "intValue", alias = "int_value")]
    pub int_value: Option<LenientI64>,
    #[serde(default, rename = "doubleValue", alias = "double_value")]
    pub double_value: Option<LenientF64>,
    #[serde(default, rename = "boolValue", alias = "bool_value")]
    pub bool_value: Option<bool>,
    #[serde(borrow, default, rename = "kvlistValue", alias = "kvlist_value")]
    pub kvlist_value: Option<KvList<'a>>,
    #[serde(borrow, default, rename = "arrayValue", alias = "array_value")]
    pub array_value: Option<ArrayValue<'a>>,
    #[serde(default, rename = "bytesValue", alias = "bytes_value")]
    pub bytes_value: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
pub struct KvList<'a> {
    #[serde(borrow, default)]
    pub values: Vec<KeyValue<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ArrayValue<'a> {
    #[serde(borrow, default)]
    pub values: Vec<AnyValue<'a>>,
}

impl<'a> AnyValue<'a> {
    pub fn as_str(&self) -> Option<&str> {
        self.string_value.as_deref()
    }

    /// The value as a number, whatever its encoding (`"12"` strings included).
    pub fn as_f64(&self) -> Option<f64> {
        if let Some(v) = self.double_value {
            return Some(v.0);
        }
        if let Some(v) = self.int_value {
            return Some(v.0 as f64);
        }
        self.string_value
            .as_deref()
            .and_then(|s| parse_f64(s.trim()))
    }

    /// The value as a non-negative integer (token counts, sequence numbers).
    pub fn as_u64(&self) -> Option<u64> {
        if let Some(v) = self.int_value {
            return u64::try_from(v.0).ok();
        }
        if let Some(s) = self.string_value.as_deref() {
            let s = s.trim();
            if let Ok(v) = s.parse::<u64>() {
                return Some(v);
            }
            return parse_f64(s).and_then(f64_to_u64);
        }
        self.double_value.and_then(|v| f64_to_u64(v.0))
    }

    pub fn as_bool(&self) -> Option<bool> {
        if let Some(b) = self.bool_value {
            return Some(b);
        }
        match self.string_value.as_deref().map(str::trim) {
            Some("true") | Some("True") | Some("TRUE") => Some(true),
            Some("false") | Some("False") | Some("FALSE") => Some(false),
            _ => None,
        }
    }

    /// The entries of a `kvlistValue` body, if it is one.
    pub fn kvlist(&self) -> &[KeyValue<'a>] {
        self.kvlist_value
            .as_ref()
            .map(|k| k.values.as_slice())
            .unwrap_or(&[])
    }

    /// A short, stable text form (for series keys and reports).
    pub fn to_text(&self) -> String {
        if let Some(s) = self.string_value.as_deref() {
            return s.to_string();
        }
        if let Some(v) = self.int_value {
            return v.0.to_string();
        }
        if let Some(v) = self.double_value {
            return v.0.to_string();
        }
        if let Some(b) = self.bool_value {
            return b.to_string();
        }
        if let Some(kv) = &self.kvlist_value {
            let inner: Vec<String> = kv
                .values
                .iter()
                .map(|e| {
                    format!(
                        "{}={}",
                        e.key,
                        e.value.as_ref().map(|v| v.to_text()).unwrap_or_default()
                    )
                })
                .collect();
            return format!("{{{}}}", inner.join(","));
        }
        if let Some(arr) = &self.array_value {
            let inner: Vec<String> = arr.values.iter().map(|v| v.to_text()).collect();
            return format!("[{}]", inner.join(","));
        }
        String::new()
    }
}

fn f64_to_u64(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64).then_some(v as u64)
}

fn parse_f64(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Looks an attribute up by key (the last one wins if a key repeats, as in a map).
pub fn attr<'b, 'a>(attrs: &'b [KeyValue<'a>], key: &str) -> Option<&'b AnyValue<'a>> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// A string attribute.
pub fn attr_str<'b>(attrs: &'b [KeyValue<'_>], key: &str) -> Option<&'b str> {
    attr(attrs, key).and_then(|v| v.as_str())
}

/// A 64-bit integer written as a JSON number or string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LenientI64(pub i64);

/// A non-negative 64-bit integer (timestamps) written as a JSON number or string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LenientU64(pub u64);

/// A double written as a JSON number or string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LenientF64(pub f64);

impl<'de> Deserialize<'de> for LenientI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientI64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 64-bit integer (number or string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientI64, E> {
                Ok(LenientI64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientI64, E> {
                i64::try_from(v)
                    .map(LenientI64)
                    .map_err(|_| E::custom("integer out of int64 range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientI64, E> {
                if v.is_finite() && v.fract() == 0.0 {
                    Ok(LenientI64(v as i64))
                } else {
                    Err(E::custom("expected an integer"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientI64, E> {
                v.trim()
                    .parse()
                    .map(LenientI64)
                    .map_err(|_| E::custom(format!("{v:?} is not an integer")))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for LenientU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientU64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unsigned 64-bit integer (number or string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientU64, E> {
                Ok(LenientU64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientU64, E> {
                u64::try_from(v)
                    .map(LenientU64)
                    .map_err(|_| E::custom("negative timestamp"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientU64, E> {
                f64_to_u64(v)
                    .map(LenientU64)
                    .ok_or_else(|| E::custom("expected an unsigned integer"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientU64, E> {
                v.trim()
                    .parse()
                    .map(LenientU64)
                    .map_err(|_| E::custom(format!("{v:?} is not an unsigned integer")))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for LenientF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientF64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number (or a string holding one)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientF64, E> {
                Ok(LenientF64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientF64, E> {
                parse_f64(v.trim())
                    .map(LenientF64)
                    .ok_or_else(|| E::custom(format!("{v:?} is not a number")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_from_strings_and_numbers_alike() {
        let text = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"timeUnixNano":"1795509495718000000","attributes":[
              {"key":"a","value":{"intValue":"42"}},
              {"key":"b","value":{"intValue":42}},
              {"key":"c","value":{"doubleValue":"0.5"}},
              {"key":"d","value":{"doubleValue":2}},
              {"key":"e","value":{"stringValue":"7"}}]},
            {"timeUnixNano":1795509495718000000,"observedTimeUnixNano":"5"}]}]}]}"#;
        let line: ExportLine = serde_json::from_str(text).unwrap();
        let logs = line.resource_logs.unwrap();
        let recs = &logs[0].scope_logs[0].log_records;
        let a = &recs[0].attributes;
        assert_eq!(attr(a, "a").unwrap().as_u64(), Some(42));
        assert_eq!(attr(a, "b").unwrap().as_u64(), Some(42));
        assert_eq!(attr(a, "c").unwrap().as_f64(), Some(0.5));
        assert_eq!(attr(a, "d").unwrap().as_f64(), Some(2.0));
        assert_eq!(attr(a, "e").unwrap().as_u64(), Some(7));
        assert_eq!(recs[0].time_ns(), Some(1_795_509_495_718_000_000));
        assert_eq!(recs[1].time_ns(), Some(1_795_509_495_718_000_000));
    }

    #[test]
    fn nested_bodies_and_snake_case_names_are_read() {
        let text = r#"{"resource_logs":[{"scope_logs":[{"log_records":[
            {"body":{"kvlist_value":{"values":[
                {"key":"event.name","value":{"string_value":"api_request"}},
                {"key":"list","value":{"arrayValue":{"values":[{"intValue":"1"},{"boolValue":true}]}}}
            ]}}}]}]}]}"#;
        let line: ExportLine = serde_json::from_str(text).unwrap();
        let logs = line.resource_logs.unwrap();
        let body = logs[0].scope_logs[0].log_records[0].body.as_ref().unwrap();
        assert_eq!(attr_str(body.kvlist(), "event.name"), Some("api_request"));
        assert_eq!(attr(body.kvlist(), "list").unwrap().to_text(), "[1,true]");
    }

    #[test]
    fn temporality_reads_numbers_and_names() {
        let t: Temporality = serde_json::from_str("2").unwrap();
        assert_eq!(t, Temporality::Cumulative);
        let t: Temporality = serde_json::from_str("\"AGGREGATION_TEMPORALITY_DELTA\"").unwrap();
        assert_eq!(t, Temporality::Delta);
    }
}
