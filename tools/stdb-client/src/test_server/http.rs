//! The HTTP side: the schema and SQL endpoints.

use super::*;

pub(super) fn error_response(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

/// `Some(404 response)` when `db` is not this server's database.
pub(super) fn check_db(state: &ServerState, db: &str) -> Option<Response> {
    (db != state.database).then(|| error_response(StatusCode::NOT_FOUND, "No such database."))
}

pub(super) async fn schema_handler(
    State(state): State<Arc<ServerState>>,
    Path(db): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check_db(&state, &db) {
        return r;
    }
    if q.get("version").map(String::as_str) != Some("9") {
        return error_response(
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string: missing or unknown `version` (only 9)",
        );
    }
    match serde_json::to_string(&spacetimedb_lib::ser::serde::SerializeWrapper::new(
        &state.raw_def,
    )) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(super) async fn sql_handler(
    State(state): State<Arc<ServerState>>,
    Path(db): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = check_db(&state, &db) {
        return r;
    }
    let started = Instant::now();
    let mut results: Vec<SqlStmtResult<ProductValue>> = Vec::new();
    for stmt in split_statements(&body) {
        let select = match parse_select(&state.schema, stmt) {
            Ok(s) => s,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("{e:#}")),
        };
        let inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        let matching: Vec<&ProductValue> = inner
            .tables
            .get(&select.table.name)
            .map(|r| r.iter().filter(|r| select.matches(r)).collect())
            .unwrap_or_default();
        let (schema, mut rows) = match &select.projection {
            Projection::Count(alias) => (
                ProductType::from([ProductTypeElement::new_named(
                    AlgebraicType::U64,
                    alias.clone(),
                )]),
                vec![ProductValue::from(vec![AlgebraicValue::U64(
                    matching.len() as u64,
                )])],
            ),
            Projection::All => (
                select.table.row_type.clone(),
                matching.into_iter().cloned().collect(),
            ),
            Projection::Columns(cols) => (
                ProductType::from(
                    cols.iter()
                        .map(|&c| select.table.row_type.elements[c].clone())
                        .collect::<Box<[_]>>(),
                ),
                matching
                    .into_iter()
                    .map(|r| {
                        ProductValue::from(
                            cols.iter()
                                .map(|&c| r.elements[c].clone())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect(),
            ),
        };
        if let Some(limit) = select.limit {
            rows.truncate(limit);
        }
        results.push(SqlStmtResult {
            schema,
            rows,
            total_duration_micros: started.elapsed().as_micros() as u64,
            stats: SqlStmtStats::default(),
        });
    }
    match serde_json::to_string(&results) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
