//! OTLP/JSON: the protobuf JSON mapping with OTLP's own rules, for logs and metrics export
//! requests.
//!
//! Writing follows what the OpenTelemetry Collector's file exporter produces: lowerCamelCase
//! keys, 64-bit integers as decimal strings, trace and span ids as hex, enums as integers,
//! fields holding their default value left out (members of a `oneof` and `optional` fields are
//! written whenever they are set), one request per line.
//!
//! Reading is lenient the way OTLP receivers must be: camelCase or snake_case keys, 64-bit
//! integers as strings or numbers, enums as integers or names, unknown keys ignored, `null`
//! meaning "not set".

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// One line (without the newline) holding a logs export request.
pub fn encode_logs(req: &ExportLogsServiceRequest) -> String {
    let mut out = String::with_capacity(1024);
    object(&mut out, |o| {
        o.array("resourceLogs", &req.resource_logs, write_resource_logs);
    });
    out
}

/// One line (without the newline) holding a metrics export request.
pub fn encode_metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::with_capacity(1024);
    object(&mut out, |o| {
        o.array(
            "resourceMetrics",
            &req.resource_metrics,
            write_resource_metrics,
        );
    });
    out
}

/// Writer of one JSON object's members; members with default values are skipped.
struct Obj<'a> {
    out: &'a mut String,
    any: bool,
}

fn object(out: &mut String, body: impl FnOnce(&mut Obj<'_>)) {
    out.push('{');
    let mut o = Obj { out, any: false };
    body(&mut o);
    o.out.push('}');
}

impl Obj<'_> {
    fn key(&mut self, key: &str) {
        if self.any {
            self.out.push(',');
        }
        self.any = true;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.string_always(key, value);
        }
    }

    fn string_always(&mut self, key: &str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// 64-bit integers travel as strings in OTLP/JSON.
    fn u64(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            self.out.push('"');
            self.out.push_str(&value.to_string());
            self.out.push('"');
        }
    }

    fn i64_always(&mut self, key: &str, value: i64) {
        self.key(key);
        self.out.push('"');
        self.out.push_str(&value.to_string());
        self.out.push('"');
    }

    fn u32(&mut self, key: &str, value: u32) {
        if value != 0 {
            self.key(key);
            self.out.push_str(&value.to_string());
        }
    }

    fn i32(&mut self, key: &str, value: i32) {
        if value != 0 {
            self.key(key);
            self.out.push_str(&value.to_string());
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        if value {
            self.key(key);
            self.out.push_str("true");
        }
    }

    fn f64(&mut self, key: &str, value: f64) {
        // -0.0 is not the default: keep it, as protobuf JSON does.
        if value != 0.0 || value.is_sign_negative() || value.is_nan() {
            self.f64_always(key, value);
        }
    }

    fn f64_always(&mut self, key: &str, value: f64) {
        self.key(key);
        write_f64(self.out, value);
    }

    fn opt_f64(&mut self, key: &str, value: Option<f64>) {
        if let Some(v) = value {
            self.f64_always(key, v);
        }
    }

    fn hex(&mut self, key: &str, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.key(key);
            self.out.push('"');
            for b in bytes {
                self.out.push(char::from(HEX[usize::from(b >> 4)]));
                self.out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            self.out.push('"');
        }
    }

    fn message(&mut self, key: &str, body: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        object(self.out, body);
    }

    fn opt_message<T>(&mut self, key: &str, value: Option<&T>, write: fn(&mut Obj<'_>, &T)) {
        if let Some(v) = value {
            self.message(key, |o| write(o, v));
        }
    }

    fn array<T>(&mut self, key: &str, items: &[T], write: fn(&mut Obj<'_>, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            object(self.out, |o| write(o, item));
        }
        self.out.push(']');
    }

    fn scalars<T: Copy>(&mut self, key: &str, items: &[T], write: fn(&mut String, T)) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write(self.out, *item);
        }
        self.out.push(']');
    }

    fn strings(&mut self, key: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_str(self.out, item);
        }
        self.out.push(']');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        // Shortest text that reads back to the same value; integral values without ".0".
        out.push_str(&v.to_string());
    }
}

fn write_u64_string(out: &mut String, v: u64) {
    out.push('"');
    out.push_str(&v.to_string());
    out.push('"');
}

fn write_resource(o: &mut Obj<'_>, r: &Resource) {
    o.array("attributes", &r.attributes, write_key_value);
    o.u32("droppedAttributesCount", r.dropped_attributes_count);
    o.array("entityRefs", &r.entity_refs, write_entity_ref);
}

fn write_entity_ref(o: &mut Obj<'_>, e: &EntityRef) {
    o.string("schemaUrl", &e.schema_url);
    o.string("type", &e.r#type);
    o.strings("idKeys", &e.id_keys);
    o.strings("descriptionKeys", &e.description_keys);
}

fn write_scope(o: &mut Obj<'_>, s: &InstrumentationScope) {
    o.string("name", &s.name);
    o.string("version", &s.version);
    o.array("attributes", &s.attributes, write_key_value);
    o.u32("droppedAttributesCount", s.dropped_attributes_count);
}

fn write_key_value(o: &mut Obj<'_>, kv: &KeyValue) {
    // The key is always written: an attribute without one would be unreadable.
    o.string_always("key", &kv.key);
    o.opt_message("value", kv.value.as_ref(), write_any_value);
}

fn write_any_value(o: &mut Obj<'_>, v: &AnyValue) {
    match &v.value {
        None => {}
        Some(any_value::Value::StringValue(s)) => o.string_always("stringValue", s),
        Some(any_value::Value::BoolValue(b)) => {
            o.key("boolValue");
            o.out.push_str(if *b { "true" } else { "false" });
        }
        Some(any_value::Value::IntValue(i)) => o.i64_always("intValue", *i),
        Some(any_value::Value::DoubleValue(d)) => o.f64_always("doubleValue", *d),
        Some(any_value::Value::ArrayValue(a)) => o.message("arrayValue", |o| {
            o.array("values", &a.values, write_any_value);
        }),
        Some(any_value::Value::KvlistValue(l)) => o.message("kvlistValue", |o| {
            o.array("values", &l.values, write_key_value);
        }),
        Some(any_value::Value::BytesValue(b)) => {
            o.key("bytesValue");
            write_str(o.out, &base64::engine::general_purpose::STANDARD.encode(b));
        }
    }
}

fn write_resource_logs(o: &mut Obj<'_>, rl: &ResourceLogs) {
    o.opt_message("resource", rl.resource.as_ref(), write_resource);
    o.array("scopeLogs", &rl.scope_logs, write_scope_logs);
    o.string("schemaUrl", &rl.schema_url);
}

fn write_scope_logs(o: &mut Obj<'_>, sl: &ScopeLogs) {
    o.opt_message("scope", sl.scope.as_ref(), write_scope);
    o.array("logRecords", &sl.log_records, write_log_record);
    o.string("schemaUrl", &sl.schema_url);
}

fn write_log_record(o: &mut Obj<'_>, r: &LogRecord) {
    o.u64("timeUnixNano", r.time_unix_nano);
    o.u64("observedTimeUnixNano", r.observed_time_unix_nano);
    o.i32("severityNumber", r.severity_number);
    o.string("severityText", &r.severity_text);
    o.opt_message("body", r.body.as_ref(), write_any_value);
    o.array("attributes", &r.attributes, write_key_value);
    o.u32("droppedAttributesCount", r.dropped_attributes_count);
    o.u32("flags", r.flags);
    o.hex("traceId", &r.trace_id);
    o.hex("spanId", &r.span_id);
    o.string("eventName", &r.event_name);
}

fn write_resource_metrics(o: &mut Obj<'_>, rm: &ResourceMetrics) {
    o.opt_message("resource", rm.resource.as_ref(), write_resource);
    o.array("scopeMetrics", &rm.scope_metrics, write_scope_metrics);
    o.string("schemaUrl", &rm.schema_url);
}

fn write_scope_metrics(o: &mut Obj<'_>, sm: &ScopeMetrics) {
    o.opt_message("scope", sm.scope.as_ref(), write_scope);
    o.array("metrics", &sm.metrics, write_metric);
    o.string("schemaUrl", &sm.schema_url);
}

fn write_metric(o: &mut Obj<'_>, m: &Metric) {
    o.string("name", &m.name);
    o.string("description", &m.description);
    o.string("unit", &m.unit);
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => o.message("gauge", |o| {
            o.array("dataPoints", &g.data_points, write_number_point);
        }),
        Some(metric::Data::Sum(s)) => o.message("sum", |o| {
            o.array("dataPoints", &s.data_points, write_number_point);
            o.i32("aggregationTemporality", s.aggregation_temporality);
            o.bool("isMonotonic", s.is_monotonic);
        }),
        Some(metric::Data::Histogram(h)) => o.message("histogram", |o| {
            o.array("dataPoints", &h.data_points, write_histogram_point);
            o.i32("aggregationTemporality", h.aggregation_temporality);
        }),
        Some(metric::Data::ExponentialHistogram(h)) => o.message("exponentialHistogram", |o| {
            o.array("dataPoints", &h.data_points, write_exp_histogram_point);
            o.i32("aggregationTemporality", h.aggregation_temporality);
        }),
        Some(metric::Data::Summary(s)) => o.message("summary", |o| {
            o.array("dataPoints", &s.data_points, write_summary_point);
        }),
    }
    o.array("metadata", &m.metadata, write_key_value);
}

fn write_number_point(o: &mut Obj<'_>, p: &NumberDataPoint) {
    o.array("attributes", &p.attributes, write_key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    match p.value {
        None => {}
        Some(number_data_point::Value::AsDouble(d)) => o.f64_always("asDouble", d),
        Some(number_data_point::Value::AsInt(i)) => o.i64_always("asInt", i),
    }
    o.array("exemplars", &p.exemplars, write_exemplar);
    o.u32("flags", p.flags);
}

fn write_histogram_point(o: &mut Obj<'_>, p: &HistogramDataPoint) {
    o.array("attributes", &p.attributes, write_key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.opt_f64("sum", p.sum);
    o.scalars("bucketCounts", &p.bucket_counts, write_u64_string);
    o.scalars("explicitBounds", &p.explicit_bounds, write_f64);
    o.array("exemplars", &p.exemplars, write_exemplar);
    o.u32("flags", p.flags);
    o.opt_f64("min", p.min);
    o.opt_f64("max", p.max);
}

fn write_exp_histogram_point(o: &mut Obj<'_>, p: &ExponentialHistogramDataPoint) {
    o.array("attributes", &p.attributes, write_key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.opt_f64("sum", p.sum);
    o.i32("scale", p.scale);
    o.u64("zeroCount", p.zero_count);
    o.opt_message("positive", p.positive.as_ref(), write_buckets);
    o.opt_message("negative", p.negative.as_ref(), write_buckets);
    o.u32("flags", p.flags);
    o.array("exemplars", &p.exemplars, write_exemplar);
    o.opt_f64("min", p.min);
    o.opt_f64("max", p.max);
    o.f64("zeroThreshold", p.zero_threshold);
}

fn write_buckets(o: &mut Obj<'_>, b: &exponential_histogram_data_point::Buckets) {
    o.i32("offset", b.offset);
    o.scalars("bucketCounts", &b.bucket_counts, write_u64_string);
}

fn write_summary_point(o: &mut Obj<'_>, p: &SummaryDataPoint) {
    o.array("attributes", &p.attributes, write_key_value);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.f64("sum", p.sum);
    o.array("quantileValues", &p.quantile_values, write_quantile);
    o.u32("flags", p.flags);
}

fn write_quantile(o: &mut Obj<'_>, q: &summary_data_point::ValueAtQuantile) {
    o.f64("quantile", q.quantile);
    o.f64("value", q.value);
}

fn write_exemplar(o: &mut Obj<'_>, e: &Exemplar) {
    o.array(
        "filteredAttributes",
        &e.filtered_attributes,
        write_key_value,
    );
    o.u64("timeUnixNano", e.time_unix_nano);
    match e.value {
        None => {}
        Some(exemplar::Value::AsDouble(d)) => o.f64_always("asDouble", d),
        Some(exemplar::Value::AsInt(i)) => o.i64_always("asInt", i),
    }
    o.hex("spanId", &e.span_id);
    o.hex("traceId", &e.trace_id);
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Parse an OTLP/JSON logs export request.
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let value: Value = serde_json::from_slice(body).context("the body is not valid JSON")?;
    let root = as_object(&value, "the request")?;
    Ok(ExportLogsServiceRequest {
        resource_logs: list(root, "resourceLogs", "resource_logs", read_resource_logs)?,
    })
}

/// Parse an OTLP/JSON metrics export request.
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    let value: Value = serde_json::from_slice(body).context("the body is not valid JSON")?;
    let root = as_object(&value, "the request")?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: list(
            root,
            "resourceMetrics",
            "resource_metrics",
            read_resource_metrics,
        )?,
    })
}

type Obj2 = Map<String, Value>;

fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Obj2> {
    match value {
        Value::Object(map) => Ok(map),
        other => bail!("{what} must be a JSON object, found {}", kind(other)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A member by its JSON name or its proto name; `null` counts as absent.
fn field<'a>(obj: &'a Obj2, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn list<T>(obj: &Obj2, camel: &str, snake: &str, read: fn(&Obj2) -> Result<T>) -> Result<Vec<T>> {
    let Some(value) = field(obj, camel, snake) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        bail!("`{camel}` must be an array, found {}", kind(value));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            as_object(item, "an element")
                .and_then(read)
                .with_context(|| format!("in {camel}[{i}]"))
        })
        .collect()
}

fn scalar_list<T>(
    obj: &Obj2,
    camel: &str,
    snake: &str,
    read: fn(&Value, &str) -> Result<T>,
) -> Result<Vec<T>> {
    let Some(value) = field(obj, camel, snake) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        bail!("`{camel}` must be an array, found {}", kind(value));
    };
    items.iter().map(|item| read(item, camel)).collect()
}

fn message<T: Default>(
    obj: &Obj2,
    camel: &str,
    snake: &str,
    read: fn(&Obj2) -> Result<T>,
) -> Result<Option<T>> {
    match field(obj, camel, snake) {
        None => Ok(None),
        Some(v) => {
            let inner = as_object(v, camel)?;
            read(inner).map(Some).with_context(|| format!("in {camel}"))
        }
    }
}

fn string(obj: &Obj2, camel: &str, snake: &str) -> Result<String> {
    match field(obj, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("`{camel}` must be a string, found {}", kind(other)),
    }
}

fn value_string(v: &Value, name: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => bail!("`{name}` must hold strings, found {}", kind(other)),
    }
}

fn boolean(obj: &Obj2, camel: &str, snake: &str) -> Result<bool> {
    match field(obj, camel, snake) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => bail!("`{camel}` must be a boolean, found {}", kind(other)),
    }
}

/// An integer given as a JSON number or a decimal string, as a 128-bit value to range-check.
fn integer(v: &Value, name: &str) -> Result<i128> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1.9e19) {
                Ok(f as i128)
            } else {
                bail!("`{name}` must be an integer, found {n}")
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .with_context(|| format!("`{name}` must be an integer, found {s:?}")),
        other => bail!("`{name}` must be an integer, found {}", kind(other)),
    }
}

fn ranged<T: TryFrom<i128>>(v: &Value, name: &str) -> Result<T> {
    let i = integer(v, name)?;
    T::try_from(i).map_err(|_| anyhow::anyhow!("`{name}` is out of range: {i}"))
}

fn uint64(obj: &Obj2, camel: &str, snake: &str) -> Result<u64> {
    field(obj, camel, snake).map_or(Ok(0), |v| ranged(v, camel))
}

fn uint32(obj: &Obj2, camel: &str, snake: &str) -> Result<u32> {
    field(obj, camel, snake).map_or(Ok(0), |v| ranged(v, camel))
}

fn int32(obj: &Obj2, camel: &str, snake: &str) -> Result<i32> {
    field(obj, camel, snake).map_or(Ok(0), |v| ranged(v, camel))
}

fn double_value(v: &Value, name: &str) -> Result<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .with_context(|| format!("`{name}` must be a number, found {n}")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .trim()
                .parse::<f64>()
                .with_context(|| format!("`{name}` must be a number, found {other:?}")),
        },
        other => bail!("`{name}` must be a number, found {}", kind(other)),
    }
}

fn double(obj: &Obj2, camel: &str, snake: &str) -> Result<f64> {
    field(obj, camel, snake).map_or(Ok(0.0), |v| double_value(v, camel))
}

fn opt_double(obj: &Obj2, camel: &str, snake: &str) -> Result<Option<f64>> {
    field(obj, camel, snake)
        .map(|v| double_value(v, camel))
        .transpose()
}

fn enumeration(
    obj: &Obj2,
    camel: &str,
    snake: &str,
    by_name: fn(&str) -> Option<i32>,
) -> Result<i32> {
    match field(obj, camel, snake) {
        None => Ok(0),
        Some(Value::String(s)) if s.parse::<i64>().is_err() => {
            by_name(s).with_context(|| format!("`{camel}`: unknown value {s:?}"))
        }
        Some(v) => ranged(v, camel),
    }
}

/// Trace and span ids: hex in OTLP/JSON; base64 accepted from senders that use the plain
/// protobuf JSON mapping.
fn id_bytes(obj: &Obj2, camel: &str, snake: &str) -> Result<Vec<u8>> {
    let text = string(obj, camel, snake)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(bytes) = decode_hex(&text) {
        return Ok(bytes);
    }
    base64::engine::general_purpose::STANDARD
        .decode(&text)
        .with_context(|| format!("`{camel}` must be hex, found {text:?}"))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn read_resource(o: &Obj2) -> Result<Resource> {
    Ok(Resource {
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        entity_refs: list(o, "entityRefs", "entity_refs", read_entity_ref)?,
    })
}

fn read_entity_ref(o: &Obj2) -> Result<EntityRef> {
    Ok(EntityRef {
        schema_url: string(o, "schemaUrl", "schema_url")?,
        r#type: string(o, "type", "type")?,
        id_keys: scalar_list(o, "idKeys", "id_keys", value_string)?,
        description_keys: scalar_list(o, "descriptionKeys", "description_keys", value_string)?,
    })
}

fn read_scope(o: &Obj2) -> Result<InstrumentationScope> {
    Ok(InstrumentationScope {
        name: string(o, "name", "name")?,
        version: string(o, "version", "version")?,
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
    })
}

fn read_key_value(o: &Obj2) -> Result<KeyValue> {
    Ok(KeyValue {
        key: string(o, "key", "key")?,
        value: message(o, "value", "value", read_any_value)?,
    })
}

fn read_any_value(o: &Obj2) -> Result<AnyValue> {
    use any_value::Value as V;
    let value = if let Some(v) = field(o, "stringValue", "string_value") {
        Some(V::StringValue(value_string(v, "stringValue")?))
    } else if field(o, "boolValue", "bool_value").is_some() {
        Some(V::BoolValue(boolean(o, "boolValue", "bool_value")?))
    } else if let Some(v) = field(o, "intValue", "int_value") {
        Some(V::IntValue(ranged(v, "intValue")?))
    } else if let Some(v) = field(o, "doubleValue", "double_value") {
        Some(V::DoubleValue(double_value(v, "doubleValue")?))
    } else if let Some(a) = message(o, "arrayValue", "array_value", |o| {
        Ok(ArrayValue {
            values: list(o, "values", "values", read_any_value)?,
        })
    })? {
        Some(V::ArrayValue(a))
    } else if let Some(l) = message(o, "kvlistValue", "kvlist_value", |o| {
        Ok(KeyValueList {
            values: list(o, "values", "values", read_key_value)?,
        })
    })? {
        Some(V::KvlistValue(l))
    } else if let Some(v) = field(o, "bytesValue", "bytes_value") {
        let text = value_string(v, "bytesValue")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&text))
            .with_context(|| format!("`bytesValue` must be base64, found {text:?}"))?;
        Some(V::BytesValue(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn read_resource_logs(o: &Obj2) -> Result<ResourceLogs> {
    Ok(ResourceLogs {
        resource: message(o, "resource", "resource", read_resource)?,
        scope_logs: list(o, "scopeLogs", "scope_logs", read_scope_logs)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn read_scope_logs(o: &Obj2) -> Result<ScopeLogs> {
    Ok(ScopeLogs {
        scope: message(o, "scope", "scope", read_scope)?,
        log_records: list(o, "logRecords", "log_records", read_log_record)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn read_log_record(o: &Obj2) -> Result<LogRecord> {
    Ok(LogRecord {
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        observed_time_unix_nano: uint64(o, "observedTimeUnixNano", "observed_time_unix_nano")?,
        severity_number: enumeration(o, "severityNumber", "severity_number", |s| {
            SeverityNumber::from_str_name(s).map(|e| e as i32)
        })?,
        severity_text: string(o, "severityText", "severity_text")?,
        body: message(o, "body", "body", read_any_value)?,
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        flags: uint32(o, "flags", "flags")?,
        trace_id: id_bytes(o, "traceId", "trace_id")?,
        span_id: id_bytes(o, "spanId", "span_id")?,
        event_name: string(o, "eventName", "event_name")?,
    })
}

fn read_resource_metrics(o: &Obj2) -> Result<ResourceMetrics> {
    Ok(ResourceMetrics {
        resource: message(o, "resource", "resource", read_resource)?,
        scope_metrics: list(o, "scopeMetrics", "scope_metrics", read_scope_metrics)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn read_scope_metrics(o: &Obj2) -> Result<ScopeMetrics> {
    Ok(ScopeMetrics {
        scope: message(o, "scope", "scope", read_scope)?,
        metrics: list(o, "metrics", "metrics", read_metric)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn temporality(o: &Obj2) -> Result<i32> {
    enumeration(
        o,
        "aggregationTemporality",
        "aggregation_temporality",
        |s| AggregationTemporality::from_str_name(s).map(|e| e as i32),
    )
}

fn read_metric(o: &Obj2) -> Result<Metric> {
    let data = if let Some(g) = message(o, "gauge", "gauge", |o| {
        Ok(Gauge {
            data_points: list(o, "dataPoints", "data_points", read_number_point)?,
        })
    })? {
        Some(metric::Data::Gauge(g))
    } else if let Some(s) = message(o, "sum", "sum", |o| {
        Ok(Sum {
            data_points: list(o, "dataPoints", "data_points", read_number_point)?,
            aggregation_temporality: temporality(o)?,
            is_monotonic: boolean(o, "isMonotonic", "is_monotonic")?,
        })
    })? {
        Some(metric::Data::Sum(s))
    } else if let Some(h) = message(o, "histogram", "histogram", |o| {
        Ok(Histogram {
            data_points: list(o, "dataPoints", "data_points", read_histogram_point)?,
            aggregation_temporality: temporality(o)?,
        })
    })? {
        Some(metric::Data::Histogram(h))
    } else if let Some(h) = message(o, "exponentialHistogram", "exponential_histogram", |o| {
        Ok(ExponentialHistogram {
            data_points: list(o, "dataPoints", "data_points", read_exp_histogram_point)?,
            aggregation_temporality: temporality(o)?,
        })
    })? {
        Some(metric::Data::ExponentialHistogram(h))
    } else {
        message(o, "summary", "summary", |o| {
            Ok(Summary {
                data_points: list(o, "dataPoints", "data_points", read_summary_point)?,
            })
        })?
        .map(metric::Data::Summary)
    };
    Ok(Metric {
        name: string(o, "name", "name")?,
        description: string(o, "description", "description")?,
        unit: string(o, "unit", "unit")?,
        metadata: list(o, "metadata", "metadata", read_key_value)?,
        data,
    })
}

fn read_number_point(o: &Obj2) -> Result<NumberDataPoint> {
    let value = if let Some(v) = field(o, "asDouble", "as_double") {
        Some(number_data_point::Value::AsDouble(double_value(
            v, "asDouble",
        )?))
    } else if let Some(v) = field(o, "asInt", "as_int") {
        Some(number_data_point::Value::AsInt(ranged(v, "asInt")?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        start_time_unix_nano: uint64(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        exemplars: list(o, "exemplars", "exemplars", read_exemplar)?,
        flags: uint32(o, "flags", "flags")?,
        value,
    })
}

fn read_histogram_point(o: &Obj2) -> Result<HistogramDataPoint> {
    Ok(HistogramDataPoint {
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        start_time_unix_nano: uint64(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        count: uint64(o, "count", "count")?,
        sum: opt_double(o, "sum", "sum")?,
        bucket_counts: scalar_list(o, "bucketCounts", "bucket_counts", ranged::<u64>)?,
        explicit_bounds: scalar_list(o, "explicitBounds", "explicit_bounds", double_value)?,
        exemplars: list(o, "exemplars", "exemplars", read_exemplar)?,
        flags: uint32(o, "flags", "flags")?,
        min: opt_double(o, "min", "min")?,
        max: opt_double(o, "max", "max")?,
    })
}

fn read_buckets(o: &Obj2) -> Result<exponential_histogram_data_point::Buckets> {
    Ok(exponential_histogram_data_point::Buckets {
        offset: int32(o, "offset", "offset")?,
        bucket_counts: scalar_list(o, "bucketCounts", "bucket_counts", ranged::<u64>)?,
    })
}

fn read_exp_histogram_point(o: &Obj2) -> Result<ExponentialHistogramDataPoint> {
    Ok(ExponentialHistogramDataPoint {
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        start_time_unix_nano: uint64(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        count: uint64(o, "count", "count")?,
        sum: opt_double(o, "sum", "sum")?,
        scale: int32(o, "scale", "scale")?,
        zero_count: uint64(o, "zeroCount", "zero_count")?,
        positive: message(o, "positive", "positive", read_buckets)?,
        negative: message(o, "negative", "negative", read_buckets)?,
        flags: uint32(o, "flags", "flags")?,
        exemplars: list(o, "exemplars", "exemplars", read_exemplar)?,
        min: opt_double(o, "min", "min")?,
        max: opt_double(o, "max", "max")?,
        zero_threshold: double(o, "zeroThreshold", "zero_threshold")?,
    })
}

fn read_summary_point(o: &Obj2) -> Result<SummaryDataPoint> {
    Ok(SummaryDataPoint {
        attributes: list(o, "attributes", "attributes", read_key_value)?,
        start_time_unix_nano: uint64(o, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        count: uint64(o, "count", "count")?,
        sum: double(o, "sum", "sum")?,
        quantile_values: list(o, "quantileValues", "quantile_values", |o| {
            Ok(summary_data_point::ValueAtQuantile {
                quantile: double(o, "quantile", "quantile")?,
                value: double(o, "value", "value")?,
            })
        })?,
        flags: uint32(o, "flags", "flags")?,
    })
}

fn read_exemplar(o: &Obj2) -> Result<Exemplar> {
    let value = if let Some(v) = field(o, "asDouble", "as_double") {
        Some(exemplar::Value::AsDouble(double_value(v, "asDouble")?))
    } else if let Some(v) = field(o, "asInt", "as_int") {
        Some(exemplar::Value::AsInt(ranged(v, "asInt")?))
    } else {
        None
    };
    Ok(Exemplar {
        filtered_attributes: list(
            o,
            "filteredAttributes",
            "filtered_attributes",
            read_key_value,
        )?,
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        span_id: id_bytes(o, "spanId", "span_id")?,
        trace_id: id_bytes(o, "traceId", "trace_id")?,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_int64_as_strings_and_skips_defaults() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource::default()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "s".into(),
                        ..Default::default()
                    }),
                    log_records: vec![LogRecord {
                        time_unix_nano: 1_795_509_494_312_000_000,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(String::new())),
                        }),
                        attributes: vec![
                            KeyValue {
                                key: "n".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::IntValue(-3)),
                                }),
                            },
                            KeyValue {
                                key: "d".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::DoubleValue(2.0)),
                                }),
                            },
                        ],
                        trace_id: vec![0xab, 0x01],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let line = encode_logs(&req);
        assert_eq!(
            line,
            r#"{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1795509494312000000","severityNumber":9,"body":{"stringValue":""},"attributes":[{"key":"n","value":{"intValue":"-3"}},{"key":"d","value":{"doubleValue":2}}],"traceId":"ab01"}]}]}]}"#
        );
        assert_eq!(decode_logs(line.as_bytes()).unwrap(), req);
    }

    #[test]
    fn reads_numbers_names_and_snake_case() {
        let body = br#"{"resource_metrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","is_monotonic":true,"dataPoints":[{"timeUnixNano":17,"asInt":5,"unknown":1}]}}]}]}]}"#;
        let req = decode_metrics(body).unwrap();
        let metric = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(metric::Data::Sum(sum)) = &metric.data else {
            panic!("not a sum: {metric:?}");
        };
        assert_eq!(sum.aggregation_temporality, 1);
        assert!(sum.is_monotonic);
        assert_eq!(sum.data_points[0].time_unix_nano, 17);
        assert_eq!(
            sum.data_points[0].value,
            Some(number_data_point::Value::AsInt(5))
        );
    }

    #[test]
    fn rejects_wrong_types_with_the_place() {
        let err = decode_logs(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("timeUnixNano"), "{text}");
        assert!(text.contains("logRecords[0]"), "{text}");
        assert!(decode_logs(b"[1,2]").is_err());
        assert!(decode_logs(b"{not json").is_err());
        let err =
            decode_logs(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"flags":-1}]}]}]}"#)
                .unwrap_err();
        assert!(format!("{err:#}").contains("out of range"), "{err:#}");
    }

    #[test]
    fn floats_keep_their_value() {
        for v in [
            0.1,
            -0.0,
            1e300,
            5e-324,
            123456.789,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let mut s = String::new();
            write_f64(&mut s, v);
            let back = double_value(&serde_json::from_str(&s).unwrap(), "x").unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{s}");
        }
        let mut s = String::new();
        write_f64(&mut s, f64::NAN);
        assert!(
            double_value(&serde_json::from_str(&s).unwrap(), "x")
                .unwrap()
                .is_nan()
        );
    }
}
