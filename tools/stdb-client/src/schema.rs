//! A database's module schema (`GET /v1/database/<db>/schema?version=9`), resolved for clients:
//! reducer parameters and table columns with every type reference inlined, argument building from
//! JSON values, and row decoding from BSATN.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use serde_json::Value as Json;
use spacetimedb_lib::db::raw_def::v9::{Lifecycle, RawModuleDefV9, TableAccess};
use spacetimedb_lib::sats::{ArrayValue, F32, F64, SumType, Typespace, i256, u256};
use spacetimedb_lib::{
    AlgebraicType, AlgebraicValue, ConnectionId, Identity, ProductType, ProductTypeElement,
    ProductValue, Timestamp, bsatn,
};

/// A module's reducers and tables, with all types inlined (no `Ref`s left).
#[derive(Debug, Clone)]
pub struct ModuleSchema {
    /// Reducers in declaration order, lifecycle reducers (`init`, `client_connected`, …) included.
    pub reducers: Vec<ReducerSchema>,
    /// Tables in declaration order, private ones included (the server only serves public ones).
    pub tables: Vec<Arc<TableSchema>>,
    raw: Arc<RawModuleDefV9>,
}

/// One reducer's signature.
#[derive(Debug, Clone)]
pub struct ReducerSchema {
    pub name: String,
    /// Parameters in order; the caller's context parameter is not part of the signature.
    pub params: Vec<Column>,
    /// `Some("init" | "client_connected" | "client_disconnected")` for lifecycle reducers, which clients cannot call.
    pub lifecycle: Option<&'static str>,
}

/// One table's row type.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    pub public: bool,
    /// The row type, type references inlined, ready for [`bsatn`] decoding.
    pub row_type: ProductType,
}

/// A named, typed field: a reducer parameter or a table column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: AlgebraicType,
}

/// BSATN-encoded reducer arguments, ready for [`crate::StdbClient::call_reducer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReducerArgs(pub Bytes);

impl ReducerArgs {
    /// Encodes an already-typed argument product (fields in parameter order).
    pub fn from_product(args: &ProductValue) -> Result<Self> {
        Ok(Self(
            bsatn::to_vec(args)
                .context("encoding reducer arguments as BSATN")?
                .into(),
        ))
    }

    /// No arguments (a reducer without parameters).
    pub fn empty() -> Self {
        Self(Bytes::new())
    }
}

impl ModuleSchema {
    /// Parses the JSON body of `GET /v1/database/<db>/schema?version=9`.
    pub fn from_json(json: &str) -> Result<Self> {
        let wrapper: spacetimedb_lib::de::serde::DeserializeWrapper<RawModuleDefV9> =
            serde_json::from_str(json)
                .context("parsing the module schema (RawModuleDefV9 JSON)")?;
        Self::from_raw(wrapper.0)
    }

    /// Resolves a raw module definition: inlines every type reference used by reducers and tables.
    pub fn from_raw(raw: RawModuleDefV9) -> Result<Self> {
        let mut typespace: Typespace = raw.typespace.clone();
        let mut reducers = Vec::with_capacity(raw.reducers.len());
        for reducer in &raw.reducers {
            let mut params = Vec::with_capacity(reducer.params.elements.len());
            for (i, elem) in reducer.params.elements.iter().enumerate() {
                let mut ty = elem.algebraic_type.clone();
                typespace
                    .inline_typerefs_in_type(&mut ty)
                    .map_err(|e| anyhow!("reducer `{}` parameter {i}: {e}", reducer.name))?;
                let name = elem
                    .name
                    .as_deref()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("arg{i}"));
                params.push(Column { name, ty });
            }
            reducers.push(ReducerSchema {
                name: reducer.name.to_string(),
                params,
                lifecycle: reducer.lifecycle.map(|l| match l {
                    Lifecycle::Init => "init",
                    Lifecycle::OnConnect => "client_connected",
                    Lifecycle::OnDisconnect => "client_disconnected",
                    _ => "lifecycle",
                }),
            });
        }
        let mut tables = Vec::with_capacity(raw.tables.len());
        for table in &raw.tables {
            let mut ty = AlgebraicType::Ref(table.product_type_ref);
            typespace
                .inline_typerefs_in_type(&mut ty)
                .map_err(|e| anyhow!("table `{}` row type: {e}", table.name))?;
            let AlgebraicType::Product(row_type) = ty else {
                bail!(
                    "table `{}` has a row type that is not a product: {}",
                    table.name,
                    type_name(&ty)
                );
            };
            let columns = row_type
                .elements
                .iter()
                .enumerate()
                .map(|(i, e)| Column {
                    name: e
                        .name
                        .as_deref()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("col{i}")),
                    ty: e.algebraic_type.clone(),
                })
                .collect();
            tables.push(Arc::new(TableSchema {
                name: table.name.to_string(),
                columns,
                public: matches!(table.table_access, TableAccess::Public),
                row_type,
            }));
        }
        Ok(Self {
            reducers,
            tables,
            raw: Arc::new(raw),
        })
    }

    /// The raw definition as served.
    pub fn raw(&self) -> &RawModuleDefV9 {
        &self.raw
    }

    /// A reducer by exact name, or an error listing the reducers that exist.
    pub fn reducer(&self, name: &str) -> Result<&ReducerSchema> {
        self.reducers
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                anyhow!(
                    "the module has no reducer `{name}`; its callable reducers are: {}. \
                 Name the right one in the adapter file",
                    self.describe_reducers()
                )
            })
    }

    /// The first of `candidates` that exists (e.g. `["set_name", "register"]`), or an error listing
    /// the candidates tried and the reducers that exist.
    pub fn pick_reducer<'a>(&'a self, candidates: &[&str]) -> Result<&'a ReducerSchema> {
        candidates
            .iter()
            .find_map(|c| {
                self.reducers
                    .iter()
                    .find(|r| r.name == *c && r.lifecycle.is_none())
            })
            .ok_or_else(|| {
                anyhow!(
                    "none of the reducers {} exists; the module's callable reducers are: {}. \
                     Name the right one in the adapter file",
                    candidates
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.describe_reducers()
                )
            })
    }

    /// A table by exact name, or an error listing the tables that exist.
    pub fn table(&self, name: &str) -> Result<&Arc<TableSchema>> {
        self.tables.iter().find(|t| t.name == name).ok_or_else(|| {
            anyhow!(
                "the module has no table `{name}`; its tables are: {}",
                self.tables
                    .iter()
                    .map(|t| t.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// `set_name(name: String), send_message(room_id: u64, text: String), …` (callable reducers only).
    pub fn describe_reducers(&self) -> String {
        let list: Vec<String> = self
            .reducers
            .iter()
            .filter(|r| r.lifecycle.is_none())
            .map(|r| r.describe())
            .collect();
        if list.is_empty() {
            "(none)".to_string()
        } else {
            list.join(", ")
        }
    }

    /// Builds a reducer's arguments from JSON values by parameter name.
    ///
    /// Every parameter must be given except `Option` ones (absent = `None`). Conversions:
    /// numbers for integers/floats (strings too, for 128/256-bit values), strings, bools,
    /// `null`/value for options, hex strings for `Identity`/`ConnectionId`, microseconds since the
    /// Unix epoch or RFC 3339 strings for `Timestamp`, unit-variant names or `{"Variant": value}`
    /// for enums, objects or arrays for structs, arrays for arrays (hex or arrays for bytes).
    pub fn reducer_args(&self, reducer: &str, args: &[(&str, Json)]) -> Result<ReducerArgs> {
        let r = self.reducer(reducer)?;
        if let Some(kind) = r.lifecycle {
            bail!(
                "reducer `{reducer}` is the module's {kind} lifecycle reducer: clients cannot call it"
            );
        }
        for (name, _) in args {
            if !r.params.iter().any(|p| p.name == *name) {
                bail!(
                    "reducer `{reducer}` has no parameter `{name}`; its signature is {}",
                    r.describe()
                );
            }
        }
        let mut values = Vec::with_capacity(r.params.len());
        for param in &r.params {
            let given = args.iter().find(|(n, _)| *n == param.name).map(|(_, v)| v);
            let value = match (given, param.ty.is_option()) {
                (Some(v), _) => json_to_value(v, &param.ty).with_context(|| {
                    format!("argument `{}` of reducer {}", param.name, r.describe())
                })?,
                (None, true) => AlgebraicValue::OptionNone(),
                (None, false) => bail!(
                    "reducer `{reducer}` needs argument `{}` ({}); its signature is {}",
                    param.name,
                    type_name(&param.ty),
                    r.describe()
                ),
            };
            values.push(value);
        }
        ReducerArgs::from_product(&ProductValue::from(values))
    }
}

impl ReducerSchema {
    /// `send_message(room_id: u64, text: String)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}(", self.name);
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}: {}", p.name, type_name(&p.ty));
        }
        s.push(')');
        s
    }

    /// Decodes BSATN reducer arguments with this reducer's parameter types.
    pub fn decode_args(&self, bytes: &[u8]) -> Result<ProductValue> {
        let ty = ProductType::from(
            self.params
                .iter()
                .map(|p| ProductTypeElement::new_named(p.ty.clone(), p.name.clone()))
                .collect::<Box<[_]>>(),
        );
        let mut slice = bytes;
        let value = ProductValue::decode(&ty, &mut slice).map_err(|e| {
            anyhow!(
                "arguments of reducer {} do not decode: {e}",
                self.describe()
            )
        })?;
        if !slice.is_empty() {
            bail!(
                "arguments of reducer {} have {} trailing bytes",
                self.describe(),
                slice.len()
            );
        }
        Ok(value)
    }
}

impl TableSchema {
    /// `message(id: u64, room_id: u64, text: String)`.
    pub fn describe(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{}: {}", c.name, type_name(&c.ty)))
            .collect();
        format!("{}({})", self.name, cols.join(", "))
    }

    /// Position of a column by name, or an error listing the columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| anyhow!("table {} has no column `{name}`", self.describe()))
    }

    /// Decodes one BSATN row of this table.
    pub fn decode_row(&self, bytes: &[u8]) -> Result<ProductValue> {
        let mut slice = bytes;
        let row = ProductValue::decode(&self.row_type, &mut slice)
            .map_err(|e| anyhow!("a row of table {} does not decode: {e}", self.describe()))?;
        if !slice.is_empty() {
            bail!(
                "a row of table {} has {} trailing bytes",
                self.describe(),
                slice.len()
            );
        }
        Ok(row)
    }

    /// A row as a JSON object keyed by column name (see [`value_to_json`]).
    pub fn row_to_json(&self, row: &ProductValue) -> serde_json::Map<String, Json> {
        self.columns
            .iter()
            .zip(row.elements.iter())
            .map(|(c, v)| (c.name.clone(), value_to_json(v, &c.ty)))
            .collect()
    }
}

/// A short, readable type name: `u64`, `String`, `Option<String>`, `Identity`, `Vec<u8>`, `{a: u8, b: bool}`.
pub fn type_name(ty: &AlgebraicType) -> String {
    match ty {
        AlgebraicType::Ref(r) => format!("&{}", r.0),
        AlgebraicType::Sum(sum) => {
            if let Some(inner) = sum.as_option() {
                format!("Option<{}>", type_name(inner))
            } else if ty.is_schedule_at() {
                "ScheduleAt".to_string()
            } else {
                let variants: Vec<String> = sum
                    .variants
                    .iter()
                    .map(|v| {
                        let name = v.name.as_deref().unwrap_or("_");
                        if v.is_unit() {
                            name.to_string()
                        } else {
                            format!("{name}({})", type_name(&v.algebraic_type))
                        }
                    })
                    .collect();
                format!("enum {{{}}}", variants.join(" | "))
            }
        }
        AlgebraicType::Product(p) => {
            if p.is_identity() {
                "Identity".into()
            } else if p.is_connection_id() {
                "ConnectionId".into()
            } else if p.is_timestamp() {
                "Timestamp".into()
            } else if p.is_time_duration() {
                "TimeDuration".into()
            } else if p.is_uuid() {
                "Uuid".into()
            } else {
                let fields: Vec<String> = p
                    .elements
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.name.as_deref().unwrap_or("_"),
                            type_name(&e.algebraic_type)
                        )
                    })
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
        }
        AlgebraicType::Array(a) => format!("Vec<{}>", type_name(&a.elem_ty)),
        AlgebraicType::String => "String".into(),
        AlgebraicType::Bool => "bool".into(),
        AlgebraicType::I8 => "i8".into(),
        AlgebraicType::U8 => "u8".into(),
        AlgebraicType::I16 => "i16".into(),
        AlgebraicType::U16 => "u16".into(),
        AlgebraicType::I32 => "i32".into(),
        AlgebraicType::U32 => "u32".into(),
        AlgebraicType::I64 => "i64".into(),
        AlgebraicType::U64 => "u64".into(),
        AlgebraicType::I128 => "i128".into(),
        AlgebraicType::U128 => "u128".into(),
        AlgebraicType::I256 => "i256".into(),
        AlgebraicType::U256 => "u256".into(),
        AlgebraicType::F32 => "f32".into(),
        AlgebraicType::F64 => "f64".into(),
    }
}

fn describe_json(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

fn int_from_json<T: TryFrom<i128> + std::str::FromStr>(v: &Json, ty: &AlgebraicType) -> Result<T> {
    let err = || anyhow!("expected a {} but got {}", type_name(ty), describe_json(v));
    match v {
        Json::Number(n) => {
            let wide: i128 = if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                return Err(err());
            };
            T::try_from(wide).map_err(|_| err())
        }
        Json::String(s) => s.trim().parse::<T>().map_err(|_| err()),
        _ => Err(err()),
    }
}

/// Converts a JSON value to a value of type `ty` (which must have no type references left).
pub fn json_to_value(v: &Json, ty: &AlgebraicType) -> Result<AlgebraicValue> {
    let mismatch = || anyhow!("expected a {} but got {}", type_name(ty), describe_json(v));
    Ok(match ty {
        AlgebraicType::Bool => AlgebraicValue::Bool(v.as_bool().ok_or_else(mismatch)?),
        AlgebraicType::String => AlgebraicValue::String(v.as_str().ok_or_else(mismatch)?.into()),
        AlgebraicType::I8 => AlgebraicValue::I8(int_from_json(v, ty)?),
        AlgebraicType::U8 => AlgebraicValue::U8(int_from_json(v, ty)?),
        AlgebraicType::I16 => AlgebraicValue::I16(int_from_json(v, ty)?),
        AlgebraicType::U16 => AlgebraicValue::U16(int_from_json(v, ty)?),
        AlgebraicType::I32 => AlgebraicValue::I32(int_from_json(v, ty)?),
        AlgebraicType::U32 => AlgebraicValue::U32(int_from_json(v, ty)?),
        AlgebraicType::I64 => AlgebraicValue::I64(int_from_json(v, ty)?),
        AlgebraicType::U64 => AlgebraicValue::U64(int_from_json(v, ty)?),
        AlgebraicType::I128 => AlgebraicValue::I128(int_from_json::<i128>(v, ty)?.into()),
        AlgebraicType::U128 => AlgebraicValue::U128(int_from_json::<u128>(v, ty)?.into()),
        AlgebraicType::I256 => {
            AlgebraicValue::I256(Box::new(i256::from(int_from_json::<i128>(v, ty)?)))
        }
        AlgebraicType::U256 => {
            AlgebraicValue::U256(Box::new(u256::from(int_from_json::<u128>(v, ty)?)))
        }
        AlgebraicType::F32 => {
            AlgebraicValue::F32(F32::from(v.as_f64().ok_or_else(mismatch)? as f32))
        }
        AlgebraicType::F64 => AlgebraicValue::F64(F64::from(v.as_f64().ok_or_else(mismatch)?)),
        AlgebraicType::Ref(r) => bail!("internal: type reference &{} was not inlined", r.0),
        AlgebraicType::Product(p) if p.is_identity() => {
            let hex = v.as_str().ok_or_else(mismatch)?;
            let id = Identity::from_hex(hex.trim_start_matches("0x"))
                .map_err(|e| anyhow!("`{hex}` is not a hex Identity: {e}"))?;
            AlgebraicValue::product([AlgebraicValue::U256(Box::new(id.to_u256()))])
        }
        AlgebraicType::Product(p) if p.is_connection_id() => {
            let hex = v.as_str().ok_or_else(mismatch)?;
            let id = ConnectionId::from_hex(hex.trim_start_matches("0x"))
                .map_err(|e| anyhow!("`{hex}` is not a hex ConnectionId: {e}"))?;
            AlgebraicValue::product([AlgebraicValue::U128(id.to_u128().into())])
        }
        AlgebraicType::Product(p) if p.is_timestamp() => {
            let micros = match v {
                Json::String(s) => Timestamp::parse_from_rfc3339(s)
                    .map_err(|e| anyhow!("`{s}` is not an RFC 3339 timestamp: {e}"))?
                    .to_micros_since_unix_epoch(),
                _ => int_from_json::<i64>(v, ty)?,
            };
            AlgebraicValue::product([AlgebraicValue::I64(micros)])
        }
        AlgebraicType::Product(p) if p.is_time_duration() => {
            AlgebraicValue::product([AlgebraicValue::I64(int_from_json::<i64>(v, ty)?)])
        }
        AlgebraicType::Product(p) => product_from_json(v, p, ty)?,
        AlgebraicType::Sum(sum) => sum_from_json(v, sum, ty)?,
        AlgebraicType::Array(a) => {
            if let (AlgebraicType::U8, Json::String(hex)) = (&*a.elem_ty, v) {
                return Ok(AlgebraicValue::Bytes(decode_hex(hex)?.into()));
            }
            let items = v.as_array().ok_or_else(mismatch)?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    json_to_value(item, &a.elem_ty).with_context(|| format!("element {i}"))
                })
                .collect::<Result<Vec<_>>>()?;
            AlgebraicValue::Array(array_of(values, &a.elem_ty)?)
        }
    })
}

/// A product (struct) from a JSON object by field name, or an array in field order.
fn product_from_json(v: &Json, p: &ProductType, ty: &AlgebraicType) -> Result<AlgebraicValue> {
    let mismatch = || anyhow!("expected a {} but got {}", type_name(ty), describe_json(v));
    let mut values = Vec::with_capacity(p.elements.len());
    match v {
        Json::Object(map) => {
            for key in map.keys() {
                if !p
                    .elements
                    .iter()
                    .any(|e| e.name.as_deref() == Some(key.as_str()))
                {
                    bail!("{} has no field `{key}`", type_name(ty));
                }
            }
            for (i, e) in p.elements.iter().enumerate() {
                let name = e.name.as_deref().unwrap_or("");
                let value = match map.get(name) {
                    Some(field) => json_to_value(field, &e.algebraic_type)
                        .with_context(|| format!("field `{name}`"))?,
                    None if e.algebraic_type.is_option() => AlgebraicValue::OptionNone(),
                    None => bail!("field `{name}` (#{i}) of {} is missing", type_name(ty)),
                };
                values.push(value);
            }
        }
        Json::Array(items) if items.len() == p.elements.len() => {
            for (item, e) in items.iter().zip(p.elements.iter()) {
                values.push(json_to_value(item, &e.algebraic_type)?);
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(AlgebraicValue::product(values))
}

/// An option (`null` or the value) or a sum variant (`"Tag"` or `{"Tag": value}`).
fn sum_from_json(v: &Json, sum: &SumType, ty: &AlgebraicType) -> Result<AlgebraicValue> {
    let mismatch = || anyhow!("expected a {} but got {}", type_name(ty), describe_json(v));
    if let Some(inner) = sum.as_option() {
        return Ok(match v {
            Json::Null => AlgebraicValue::OptionNone(),
            other => AlgebraicValue::OptionSome(json_to_value(other, inner)?),
        });
    }
    let (tag_name, payload) = match v {
        Json::String(s) => (s.as_str(), None),
        Json::Object(map) if map.len() == 1 => {
            let (k, val) = map.iter().next().ok_or_else(mismatch)?;
            (k.as_str(), Some(val))
        }
        _ => return Err(mismatch()),
    };
    let (tag, variant) = sum
        .get_variant(tag_name)
        .ok_or_else(|| anyhow!("`{tag_name}` is not a variant of {}", type_name(ty)))?;
    let value = match payload {
        Some(p) => json_to_value(p, &variant.algebraic_type)?,
        None if variant.is_unit() => AlgebraicValue::unit(),
        None => bail!(
            "variant `{tag_name}` of {} needs a value: {{\"{tag_name}\": …}}",
            type_name(ty)
        ),
    };
    Ok(AlgebraicValue::sum(tag, value))
}

fn decode_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) {
        bail!("`{s}` is not hex bytes (odd length)");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| anyhow!("`{s}` is not hex bytes"))
        })
        .collect()
}

/// Packs already-converted elements into the typed array representation.
fn array_of(values: Vec<AlgebraicValue>, elem: &AlgebraicType) -> Result<ArrayValue> {
    macro_rules! collect {
        ($var:ident) => {
            values
                .into_iter()
                .map(|v| match v {
                    AlgebraicValue::$var(x) => Ok(x),
                    _ => Err(anyhow!("internal: array element of the wrong kind")),
                })
                .collect::<Result<Vec<_>>>()?
                .into_boxed_slice()
                .into()
        };
    }
    Ok(match elem {
        AlgebraicType::Bool => collect!(Bool),
        AlgebraicType::I8 => collect!(I8),
        AlgebraicType::U8 => collect!(U8),
        AlgebraicType::I16 => collect!(I16),
        AlgebraicType::U16 => collect!(U16),
        AlgebraicType::I32 => collect!(I32),
        AlgebraicType::U32 => collect!(U32),
        AlgebraicType::I64 => collect!(I64),
        AlgebraicType::U64 => collect!(U64),
        AlgebraicType::F32 => collect!(F32),
        AlgebraicType::F64 => collect!(F64),
        AlgebraicType::String => collect!(String),
        AlgebraicType::Product(_) => collect!(Product),
        AlgebraicType::Sum(_) => collect!(Sum),
        other => bail!(
            "arrays of {} are not supported as JSON arguments",
            type_name(other)
        ),
    })
}

/// A value as plain JSON: numbers, strings, bools; `null` or the value for options; hex strings
/// for `Identity`/`ConnectionId`; microseconds for `Timestamp`/`TimeDuration`; objects for structs;
/// `{"Variant": value}` (or the bare name for unit variants) for enums. Numbers beyond 64 bits become strings.
pub fn value_to_json(v: &AlgebraicValue, ty: &AlgebraicType) -> Json {
    match (v, ty) {
        (AlgebraicValue::Bool(b), _) => Json::Bool(*b),
        (AlgebraicValue::String(s), _) => Json::String(s.to_string()),
        (AlgebraicValue::I8(x), _) => (*x).into(),
        (AlgebraicValue::U8(x), _) => (*x).into(),
        (AlgebraicValue::I16(x), _) => (*x).into(),
        (AlgebraicValue::U16(x), _) => (*x).into(),
        (AlgebraicValue::I32(x), _) => (*x).into(),
        (AlgebraicValue::U32(x), _) => (*x).into(),
        (AlgebraicValue::I64(x), _) => (*x).into(),
        (AlgebraicValue::U64(x), _) => (*x).into(),
        (AlgebraicValue::I128(x), _) => Json::String({ x.0 }.to_string()),
        (AlgebraicValue::U128(x), _) => Json::String({ x.0 }.to_string()),
        (AlgebraicValue::I256(x), _) => Json::String(x.to_string()),
        (AlgebraicValue::U256(x), _) => Json::String(x.to_string()),
        (AlgebraicValue::F32(x), _) => {
            serde_json::Number::from_f64(x.into_inner().into()).map_or(Json::Null, Json::Number)
        }
        (AlgebraicValue::F64(x), _) => {
            serde_json::Number::from_f64(x.into_inner()).map_or(Json::Null, Json::Number)
        }
        (AlgebraicValue::Product(p), AlgebraicType::Product(pt)) => {
            match p.elements.first() {
                Some(AlgebraicValue::U256(x)) if pt.is_identity() => {
                    return Json::String(Identity::from_u256(**x).to_hex().to_string());
                }
                Some(AlgebraicValue::U128(x)) if pt.is_connection_id() => {
                    return Json::String(ConnectionId::from_u128(x.0).to_hex().to_string());
                }
                Some(AlgebraicValue::I64(x)) if pt.is_timestamp() || pt.is_time_duration() => {
                    return (*x).into();
                }
                _ => {}
            }
            let map: serde_json::Map<String, Json> = pt
                .elements
                .iter()
                .zip(p.elements.iter())
                .enumerate()
                .map(|(i, (e, v))| {
                    (
                        e.name
                            .as_deref()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string()),
                        value_to_json(v, &e.algebraic_type),
                    )
                })
                .collect();
            Json::Object(map)
        }
        (AlgebraicValue::Sum(s), AlgebraicType::Sum(st)) => {
            if let Some(inner) = st.as_option() {
                return if s.tag == 0 {
                    value_to_json(&s.value, inner)
                } else {
                    Json::Null
                };
            }
            match st.get_variant_by_tag(s.tag) {
                Some(variant) => {
                    let name = variant
                        .name
                        .as_deref()
                        .map(str::to_string)
                        .unwrap_or_else(|| s.tag.to_string());
                    if variant.is_unit() {
                        Json::String(name)
                    } else {
                        let mut map = serde_json::Map::new();
                        map.insert(name, value_to_json(&s.value, &variant.algebraic_type));
                        Json::Object(map)
                    }
                }
                None => Json::Null,
            }
        }
        (AlgebraicValue::Array(a), AlgebraicType::Array(at)) => Json::Array(
            a.iter_cloned()
                .map(|v| value_to_json(&v, &at.elem_ty))
                .collect(),
        ),
        // Shape and type disagree (should not happen for decoded rows): fall back to SATS JSON.
        (other, _) => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hand-written schema in the served shape, with the variations generated apps show:
    /// other reducer names, a lifecycle reducer, a user enum behind a type reference, options,
    /// timestamps, identities, arrays and a private table.
    fn fixture() -> ModuleSchema {
        ModuleSchema::from_json(include_str!("../tests/fixtures/chat-schema-v9.json")).unwrap()
    }

    #[test]
    fn a_served_schema_resolves_with_references_inlined() {
        let s = fixture();
        assert_eq!(
            s.describe_reducers(),
            "register(username: String), set_status(status: enum {Online | Away | Custom(String)}), post(channel_id: u32, body: String, reply_to: Option<u64>, at: Timestamp, mention: Identity, attachment: Vec<u8>)"
        );
        assert_eq!(s.reducers[0].lifecycle, Some("client_connected"));
        let users = s.table("users").unwrap();
        assert_eq!(
            users.describe(),
            "users(identity: Identity, username: Option<String>, status: enum {Online | Away | Custom(String)})"
        );
        assert!(users.public);
        assert!(!s.table("messages").unwrap().public);
        let err = s.table("message").unwrap_err().to_string();
        assert!(err.contains("users(") && err.contains("messages("), "{err}");
        let err = s
            .reducer_args("identity_connected", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("lifecycle"), "{err}");
    }

    #[test]
    fn json_arguments_convert_to_the_parameter_types() {
        let s = fixture();
        let mention = Identity::from_claims("i", "s");
        let args = s
            .reducer_args(
                "post",
                &[
                    ("channel_id", json!(3)),
                    ("body", json!("hello")),
                    ("at", json!("2026-01-02T03:04:05Z")),
                    ("mention", json!(mention.to_hex().to_string())),
                    ("attachment", json!("0x0aff")),
                ],
            )
            .unwrap();
        let decoded = s.reducer("post").unwrap().decode_args(&args.0).unwrap();
        let e = &decoded.elements;
        assert_eq!(e[0], AlgebraicValue::U32(3));
        assert_eq!(e[1], AlgebraicValue::String("hello".into()));
        assert_eq!(
            e[2],
            AlgebraicValue::OptionNone(),
            "an absent option is None"
        );
        let at = Timestamp::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            e[3],
            AlgebraicValue::product([AlgebraicValue::I64(at.to_micros_since_unix_epoch())])
        );
        assert_eq!(
            e[4],
            AlgebraicValue::product([AlgebraicValue::U256(Box::new(mention.to_u256()))])
        );
        assert_eq!(e[5], AlgebraicValue::Bytes(vec![0x0a, 0xff].into()));

        let with_reply = s
            .reducer_args(
                "post",
                &[
                    ("channel_id", json!(3)),
                    ("body", json!("re")),
                    ("reply_to", json!(41)),
                    ("at", json!(1_000_000)),
                    ("mention", json!(mention.to_hex().to_string())),
                    ("attachment", json!([1, 2])),
                ],
            )
            .unwrap();
        let decoded = s
            .reducer("post")
            .unwrap()
            .decode_args(&with_reply.0)
            .unwrap();
        assert_eq!(
            decoded.elements[2],
            AlgebraicValue::OptionSome(AlgebraicValue::U64(41))
        );
        assert_eq!(
            decoded.elements[5],
            AlgebraicValue::Bytes(vec![1, 2].into())
        );

        // Enums: unit variants by name, payload variants as a one-key object.
        let away = s
            .reducer_args("set_status", &[("status", json!("Away"))])
            .unwrap();
        assert_eq!(away.0.as_ref(), &[1]);
        let custom = s
            .reducer_args("set_status", &[("status", json!({"Custom": "brb"}))])
            .unwrap();
        assert_eq!(&custom.0[..1], &[2]);
        let err = format!(
            "{:#}",
            s.reducer_args("set_status", &[("status", json!("Busy"))])
                .unwrap_err()
        );
        assert!(err.contains("`Busy` is not a variant"), "{err}");
        let err = format!(
            "{:#}",
            s.reducer_args("set_status", &[("status", json!("Custom"))])
                .unwrap_err()
        );
        assert!(err.contains("needs a value"), "{err}");
        let err = format!(
            "{:#}",
            s.reducer_args("register", &[("username", json!(5))])
                .unwrap_err()
        );
        assert!(err.contains("expected a String but got 5"), "{err}");
        let err = format!(
            "{:#}",
            s.reducer_args("post", &[("channel_id", json!(1u64 << 40))])
                .unwrap_err()
        );
        assert!(err.contains("expected a u32"), "{err}");
    }

    #[test]
    fn rows_decode_and_render_as_plain_json() {
        let s = fixture();
        let users = s.table("users").unwrap();
        let id = Identity::from_claims("i", "u");
        let row = ProductValue::from(vec![
            AlgebraicValue::product([AlgebraicValue::U256(Box::new(id.to_u256()))]),
            AlgebraicValue::OptionSome(AlgebraicValue::String("ann".into())),
            AlgebraicValue::sum(2, AlgebraicValue::String("lunch".into())),
        ]);
        let bytes = bsatn::to_vec(&row).unwrap();
        let decoded = users.decode_row(&bytes).unwrap();
        assert_eq!(decoded, row);
        assert_eq!(
            Json::Object(users.row_to_json(&decoded)),
            json!({"identity": id.to_hex().to_string(), "username": "ann", "status": {"Custom": "lunch"}})
        );
        assert!(users.decode_row(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            users
                .decode_row(&longer)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );

        let messages = s.table("messages").unwrap();
        let msg = ProductValue::from(vec![
            AlgebraicValue::U64(5),
            AlgebraicValue::U32(1),
            AlgebraicValue::product([AlgebraicValue::U256(Box::new(id.to_u256()))]),
            AlgebraicValue::String("hi".into()),
            AlgebraicValue::product([AlgebraicValue::I64(42)]),
            AlgebraicValue::Array(ArrayValue::from(
                vec![Box::<str>::from("a")].into_boxed_slice(),
            )),
        ]);
        let decoded = messages.decode_row(&bsatn::to_vec(&msg).unwrap()).unwrap();
        assert_eq!(
            Json::Object(messages.row_to_json(&decoded)),
            json!({"message_id": 5, "channel_id": 1, "author": id.to_hex().to_string(), "body": "hi", "created_at": 42, "tags": ["a"]})
        );
    }
}
