//! Discovery from an app's source: what an Express + Socket.IO server says about itself.
//!
//! `--source APP_DIR` reads the server code (JavaScript or TypeScript, `server/` when the
//! folder has one) and collects, without running anything:
//! - REST routes (`app.post('/api/…')`, routers mounted with `app.use('/prefix', router)`)
//!   with the `req.body` fields their handlers read;
//! - Socket.IO handlers (`socket.on('event', …)`): the payload's fields (destructured,
//!   typed or read as `data.field`) or a bare value, whether the handler takes an ack
//!   callback, whether it joins a room, and the events it emits to rooms;
//! - fields read from the handshake (`socket.handshake.auth`);
//! - the tables and columns of the schema (Drizzle `pgTable`, SQL `CREATE TABLE`,
//!   Mongoose schemas);
//! - lines that look like a per-user rate limit.
//!
//! [`crate::probe`] turns these facts into ranked candidates and confirms them against the
//! running app. The scanner is deliberately tolerant: it reads code the way a person skims
//! it, and a construct it does not understand only costs a candidate, never the run.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result, bail};
use regex::Regex;

/// A REST route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Full path with Express parameters (`/api/rooms/:id/join`).
    pub path: String,
    /// Fields the handler reads from `req.body`, in order of appearance.
    pub body_fields: Vec<String>,
    /// `file:line`.
    pub at: String,
}

/// What a Socket.IO handler expects as its first argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// An object with these fields.
    Fields(Vec<String>),
    /// A bare value (`socket.on('join_room', (roomId) => …)`), named as in the code.
    Scalar(String),
    /// Nothing the scanner could read.
    Unknown,
}

/// A Socket.IO event handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub event: String,
    pub payload: Payload,
    /// The handler takes a second parameter (the ack callback).
    pub ack: bool,
    /// The handler calls `socket.join(…)`.
    pub joins_room: bool,
    /// The handler remembers who the socket is (`map.set(socket.id, …)`, `socket.data.x =`).
    pub sets_identity: bool,
    /// Events emitted to a room, with whether the sender receives them too
    /// (`io.to(room)` does, `socket.to(room)` does not).
    pub room_emits: Vec<(String, bool)>,
    /// `file:line`.
    pub at: String,
}

/// A table (or Mongoose collection) and its columns, as the database names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub at: String,
}

/// A line that looks like a per-user rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub at: String,
    pub line: String,
    /// Messages per second per user, when the line states an interval (`now - last < 500`).
    pub per_second: Option<f64>,
}

/// Everything the scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceFacts {
    /// The folder that was read.
    pub root: PathBuf,
    pub files: usize,
    pub routes: Vec<Route>,
    pub handlers: Vec<Handler>,
    /// Fields the server reads from `socket.handshake.auth`.
    pub handshake_auth: Vec<String>,
    pub tables: Vec<Table>,
    pub rate_limits: Vec<RateLimit>,
}

/// Folders never read: dependencies, builds, the client, snapshots of earlier levels. (Files
/// named `stress-shapes.js` are skipped too: they are bench-stress's own test shapes,
/// installed into the reference app only when its tests ask for them.)
const SKIP_DIRS: [&str; 9] = [
    "node_modules",
    "dist",
    "build",
    "client",
    "public",
    ".git",
    ".bench",
    "coverage",
    "drizzle",
];

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file; a bad one is a bug caught by the tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}"))
}

impl SourceFacts {
    /// Reads the app's server code under `dir` (its `server/` folder when there is one).
    pub fn scan(dir: &Path) -> Result<SourceFacts> {
        if !dir.is_dir() {
            bail!(
                "--source {}: not a folder (give the app's folder, the one with server/)",
                dir.display()
            );
        }
        let root = if dir.join("server").is_dir() {
            dir.join("server")
        } else {
            dir.to_path_buf()
        };
        let mut paths = Vec::new();
        collect(&root, &mut paths)?;
        paths.sort();
        let mut facts = SourceFacts {
            root: root.clone(),
            ..SourceFacts::default()
        };
        let files: Vec<SourceFile> = paths
            .iter()
            .map(|p| SourceFile::read(&root, p))
            .collect::<Result<_>>()?;
        facts.files = files.len();
        let mounts = router_mounts(&files);
        for file in &files {
            let prefix = mounts
                .iter()
                .find(|(path, _)| path == &file.path)
                .map(|(_, prefix)| prefix.as_str());
            facts.routes.extend(file.routes(prefix));
            facts.handlers.extend(file.handlers());
            facts.handshake_auth.extend(file.handshake_auth());
            facts.tables.extend(file.tables());
            facts.rate_limits.extend(file.rate_limits());
        }
        facts.handshake_auth.sort();
        facts.handshake_auth.dedup();
        Ok(facts)
    }

    /// A few lines for the run's notes.
    pub fn summary(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "source: read {} server files under {}: {} routes, {} socket handlers, {} tables",
            self.files,
            self.root.display(),
            self.routes.len(),
            self.handlers.len(),
            self.tables.len()
        )];
        if !self.handshake_auth.is_empty() {
            notes.push(format!(
                "source: the handshake's auth is read for {}",
                self.handshake_auth.join(", ")
            ));
        }
        for limit in &self.rate_limits {
            notes.push(format!(
                "source: rate limit at {}: `{}`{}",
                limit.at,
                limit.line,
                limit
                    .per_second
                    .map(|r| format!(" (the app allows each user about {r:.1} messages/s)"))
                    .unwrap_or_default()
            ));
        }
        notes
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read folder {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with("level-") {
                collect(&path, out)?;
            }
        } else if is_code(&name) && name != "stress-shapes.js" {
            out.push(path);
        }
    }
    Ok(())
}

fn is_code(name: &str) -> bool {
    let code = [".ts", ".js", ".mjs", ".cjs", ".mts", ".cts"]
        .iter()
        .any(|ext| name.ends_with(ext));
    code && !name.ends_with(".d.ts")
        && !name.contains(".test.")
        && !name.contains(".spec.")
        && !name.ends_with(".config.ts")
        && !name.ends_with(".config.js")
}

/// One file, with its comments blanked out (line numbers kept).
struct SourceFile {
    path: PathBuf,
    name: String,
    code: String,
}

impl SourceFile {
    fn read(root: &Path, path: &Path) -> Result<SourceFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        Ok(SourceFile {
            path: path.to_path_buf(),
            name,
            code: strip_comments(&text),
        })
    }

    fn at(&self, offset: usize) -> String {
        let line = self.code[..offset].matches('\n').count() + 1;
        format!("{}:{line}", self.name)
    }

    fn routes(&self, router_prefix: Option<&str>) -> Vec<Route> {
        static ROUTE: LazyLock<Regex> = LazyLock::new(|| {
            regex(r#"\b(\w+)\.(get|post|put|patch|delete)\(\s*['"`](/[^'"`]*)['"`]"#)
        });
        let found: Vec<_> = ROUTE.captures_iter(&self.code).collect();
        let mut routes = Vec::new();
        for (i, cap) in found.iter().enumerate() {
            let whole = cap.get(0).map_or(0..0, |m| m.range());
            let end = found
                .get(i + 1)
                .and_then(|c| c.get(0))
                .map_or(self.code.len(), |m| m.start());
            let receiver = &cap[1];
            let prefix = match router_prefix {
                Some(p) if receiver != "app" => p.trim_end_matches('/'),
                _ => "",
            };
            let path = format!("{prefix}{}", &cap[3]);
            routes.push(Route {
                method: cap[2].to_ascii_uppercase(),
                path: if path.len() > 1 {
                    path.trim_end_matches('/').to_string()
                } else {
                    path
                },
                body_fields: body_fields(&self.code[whole.end..end]),
                at: self.at(whole.start),
            });
        }
        routes
    }

    fn handlers(&self) -> Vec<Handler> {
        static ON: LazyLock<Regex> =
            LazyLock::new(|| regex(r#"\b(\w+)\.on\(\s*['"`]([^'"`]+)['"`]\s*,"#));
        const NOT_SOCKETS: [&str; 10] = [
            "io",
            "process",
            "server",
            "httpServer",
            "http",
            "pool",
            "app",
            "db",
            "wss",
            "emitter",
        ];
        const LIFECYCLE: [&str; 7] = [
            "connection",
            "connect",
            "disconnect",
            "disconnecting",
            "error",
            "close",
            "listening",
        ];
        let mut out = Vec::new();
        for cap in ON.captures_iter(&self.code) {
            let (receiver, event) = (&cap[1], &cap[2]);
            if NOT_SOCKETS.contains(&receiver) || LIFECYCLE.contains(&event) {
                continue;
            }
            let end = cap.get(0).map_or(0, |m| m.end());
            let start = cap.get(0).map_or(0, |m| m.start());
            let (params, body) = handler_parts(&self.code[end..]);
            out.push(handler(event, receiver, &params, body, self.at(start)));
        }
        out
    }

    fn handshake_auth(&self) -> Vec<String> {
        static DOT: LazyLock<Regex> =
            LazyLock::new(|| regex(r"handshake\.auth\??\.(\w+)|handshake\.auth\[['\x22](\w+)"));
        static DESTRUCTURE: LazyLock<Regex> =
            LazyLock::new(|| regex(r"\{([^{}]*)\}\s*=\s*(?:\w+\.)?handshake\.auth\b"));
        let mut fields: Vec<String> = DOT
            .captures_iter(&self.code)
            .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
            .collect();
        for cap in DESTRUCTURE.captures_iter(&self.code) {
            fields.extend(object_keys(&cap[1]));
        }
        fields
    }

    fn tables(&self) -> Vec<Table> {
        static DRIZZLE: LazyLock<Regex> =
            LazyLock::new(|| regex(r#"\b(?:pg|mysql|sqlite)Table\(\s*['"`](\w+)['"`]\s*,\s*\{"#));
        static DRIZZLE_COLUMN: LazyLock<Regex> =
            LazyLock::new(|| regex(r#"(\w+)\s*:\s*\w+\(\s*(?:['"`](\w+)['"`])?"#));
        static CREATE: LazyLock<Regex> = LazyLock::new(|| {
            regex(r#"(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?["`]?(\w+)["`]?\s*\("#)
        });
        static MONGOOSE: LazyLock<Regex> = LazyLock::new(|| {
            regex(
                r#"\bmodel(?:<[^>]*>)?\(\s*['"`](\w+)['"`]\s*,\s*(?:new\s+(?:mongoose\.)?Schema(?:<[^>]*>)?\(\s*)?(\w+)?"#,
            )
        });
        let mut tables = Vec::new();
        for cap in DRIZZLE.captures_iter(&self.code) {
            let open = cap.get(0).map_or(0, |m| m.end() - 1);
            let inner = balanced(&self.code[open..], '{', '}').unwrap_or("");
            let columns = top_level(inner, ',')
                .iter()
                .filter_map(|entry| {
                    let c = DRIZZLE_COLUMN.captures(entry.trim())?;
                    Some(c.get(2).unwrap_or(c.get(1)?).as_str().to_string())
                })
                .collect();
            tables.push(Table {
                name: cap[1].to_string(),
                columns,
                at: self.at(open),
            });
        }
        for cap in CREATE.captures_iter(&self.code) {
            let open = cap.get(0).map_or(0, |m| m.end() - 1);
            let inner = balanced(&self.code[open..], '(', ')').unwrap_or("");
            tables.push(Table {
                name: cap[1].to_string(),
                columns: sql_columns(inner),
                at: self.at(open),
            });
        }
        for cap in MONGOOSE.captures_iter(&self.code) {
            let model = &cap[1];
            let columns = cap
                .get(2)
                .and_then(|v| self.mongoose_fields(v.as_str()))
                .unwrap_or_default();
            tables.push(Table {
                name: format!("{}s", model.to_ascii_lowercase()),
                columns,
                at: self.at(cap.get(0).map_or(0, |m| m.start())),
            });
        }
        tables
    }

    /// The top-level keys of `const <var> = new Schema({...})`.
    fn mongoose_fields(&self, var: &str) -> Option<Vec<String>> {
        let pattern = format!(
            r"\b{}\s*=\s*new\s+(?:mongoose\.)?Schema(?:<[^>]*>)?\(\s*\{{",
            regex::escape(var)
        );
        let m = Regex::new(&pattern).ok()?.find(&self.code)?;
        let inner = balanced(&self.code[m.end() - 1..], '{', '}')?;
        Some(object_keys(inner))
    }

    fn rate_limits(&self) -> Vec<RateLimit> {
        static LIMIT: LazyLock<Regex> = LazyLock::new(|| {
            regex(
                r"(?i)rate.?limit|too many|slow down|\w+\s*-\s*\w*last\w*\s*<\s*\d+|\w*last\w*\s*\+\s*\d+\s*>",
            )
        });
        static INTERVAL: LazyLock<Regex> =
            LazyLock::new(|| regex(r"(?i)-\s*\w*last\w*\s*<\s*(\d+)|last\w*\s*\+\s*(\d+)\s*>"));
        let mut out: Vec<RateLimit> = Vec::new();
        for (n, line) in self.code.lines().enumerate() {
            if !LIMIT.is_match(line) || line.trim().is_empty() {
                continue;
            }
            let per_second = INTERVAL.captures(line).and_then(|c| {
                let ms: f64 = c.get(1).or(c.get(2))?.as_str().parse().ok()?;
                (ms > 0.0).then(|| 1000.0 / ms)
            });
            let text = line.trim();
            out.push(RateLimit {
                at: format!("{}:{}", self.name, n + 1),
                line: text.chars().take(120).collect(),
                per_second,
            });
        }
        // A limit stated as an interval says the most; keep those when there are any.
        if out.iter().any(|r| r.per_second.is_some()) {
            out.retain(|r| r.per_second.is_some());
        }
        out.truncate(3);
        out
    }
}

/// The fields a route handler reads from `req.body`.
fn body_fields(handler: &str) -> Vec<String> {
    static DESTRUCTURE: LazyLock<Regex> =
        LazyLock::new(|| regex(r"\{([^{}]*)\}\s*=\s*req\.body\b"));
    static DOT: LazyLock<Regex> = LazyLock::new(|| regex(r"req\.body\??\.(\w+)"));
    let mut fields = Vec::new();
    for cap in DESTRUCTURE.captures_iter(handler) {
        fields.extend(object_keys(&cap[1]));
    }
    for cap in DOT.captures_iter(handler) {
        fields.push(cap[1].to_string());
    }
    dedup_keep_order(fields)
}

fn dedup_keep_order(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `(prefix)` of files whose router is mounted with `app.use('/prefix', router)`.
fn router_mounts(files: &[SourceFile]) -> Vec<(PathBuf, String)> {
    static USE: LazyLock<Regex> =
        LazyLock::new(|| regex(r#"\.use\(\s*['"`](/[^'"`]*)['"`]\s*,\s*(?:\w+\(\s*)?(\w+)"#));
    static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
        regex(
            r#"(?:import\s+(\w+)\s+from|(?:const|let|var)\s+(\w+)\s*=\s*require\()\s*['"`](\.[^'"`]+)['"`]"#,
        )
    });
    let mut mounts = Vec::new();
    for file in files {
        let dir = file.path.parent().unwrap_or(Path::new("."));
        for cap in USE.captures_iter(&file.code) {
            let (prefix, var) = (&cap[1], &cap[2]);
            let import = IMPORT
                .captures_iter(&file.code)
                .find(|c| c.get(1).or(c.get(2)).is_some_and(|m| m.as_str() == var));
            if let Some(import) = import
                && let Some(path) = resolve_module(dir, &import[3])
            {
                mounts.push((path, prefix.to_string()));
            }
        }
    }
    mounts
}

fn resolve_module(dir: &Path, spec: &str) -> Option<PathBuf> {
    let base = dir.join(spec);
    let stem = base.with_extension("");
    let candidates = [
        base.clone(),
        stem.with_extension("ts"),
        stem.with_extension("js"),
        base.join("index.ts"),
        base.join("index.js"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// Splits what follows `socket.on('event',` into the parameter list and the body.
fn handler_parts(rest: &str) -> (Vec<String>, &str) {
    let mut s = rest.trim_start();
    s = s.strip_prefix("async").map_or(s, str::trim_start);
    if let Some(after) = s.strip_prefix("function") {
        s = after.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        s = s.trim_start();
    }
    let (params, after) = if s.starts_with('(') {
        let inner = balanced(s, '(', ')').unwrap_or("");
        (top_level(inner, ','), &s[inner.len() + 2..])
    } else {
        let name: String = s
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = &s[name.len()..];
        if !after.trim_start().starts_with("=>") {
            // A handler passed by name: its parameters are elsewhere.
            return (Vec::new(), "");
        }
        (vec![name], after)
    };
    let after = after.trim_start();
    let arrow = after.starts_with("=>");
    let after = after.strip_prefix("=>").unwrap_or(after).trim_start();
    if arrow && !after.starts_with('{') {
        // An expression body: up to the `)` that closes the `.on(` call.
        let wrapped = format!("({after}");
        let expr = balanced(&wrapped, '(', ')').unwrap_or(after);
        return (params, &after[..expr.len().min(after.len())]);
    }
    // A return type annotation (`): Promise<void> {`) comes before the body.
    let open = after.find('{').unwrap_or(after.len());
    let body = balanced(&after[open..], '{', '}').unwrap_or(after);
    (params, body)
}

fn handler(event: &str, receiver: &str, params: &[String], body: &str, at: String) -> Handler {
    static EMIT: LazyLock<Regex> = LazyLock::new(|| {
        regex(r#"\b(\w+)(?:\.broadcast)?\.(?:to|in)\([^;]*?\)\s*\.emit\(\s*['"`]([^'"`]+)['"`]"#)
    });
    let payload = params
        .first()
        .map_or(Payload::Unknown, |p| payload_of(p, body));
    let identity_set = format!(".set({receiver}.id");
    let sets_identity = body.contains(&identity_set)
        || body.contains(&format!("{receiver}.data."))
        || Regex::new(&format!(
            r"\b{}\.\w*[uU]ser\w*\s*=[^=]",
            regex::escape(receiver)
        ))
        .is_ok_and(|r| r.is_match(body));
    let room_emits = EMIT
        .captures_iter(body)
        .map(|c| (c[2].to_string(), &c[1] != receiver))
        .collect();
    Handler {
        event: event.to_string(),
        payload,
        ack: params.len() >= 2 && !params[1].trim().is_empty(),
        joins_room: body.contains(&format!("{receiver}.join(")),
        sets_identity,
        room_emits,
        at,
    }
}

/// The payload a handler's first parameter describes.
fn payload_of(param: &str, body: &str) -> Payload {
    let param = param.trim();
    if param.starts_with('{') {
        let inner = balanced(param, '{', '}').unwrap_or("");
        return Payload::Fields(object_keys(inner));
    }
    let (name, ty) = match param.split_once(':') {
        Some((n, t)) => (n.trim().trim_end_matches('?'), t.trim()),
        None => (param.split('=').next().unwrap_or("").trim(), ""),
    };
    let mut fields = if ty.starts_with('{') {
        object_keys(balanced(ty, '{', '}').unwrap_or(""))
    } else {
        Vec::new()
    };
    if let Ok(dot) = Regex::new(&format!(r"\b{}\??\.(\w+)", regex::escape(name))) {
        fields.extend(dot.captures_iter(body).map(|c| c[1].to_string()));
    }
    if let Ok(destructure) = Regex::new(&format!(
        r"\{{([^{{}}]*)\}}\s*=\s*{}\b",
        regex::escape(name)
    )) {
        for cap in destructure.captures_iter(body) {
            fields.extend(object_keys(&cap[1]));
        }
    }
    let fields = dedup_keep_order(fields);
    if !fields.is_empty() {
        Payload::Fields(fields)
    } else if name.is_empty() {
        Payload::Unknown
    } else {
        Payload::Scalar(name.to_string())
    }
}

/// Keys of an object pattern or type literal: `a, b: c, d = 1` / `a: number; b?: string`.
fn object_keys(inner: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for part in inner.split([',', ';', '\n']) {
        let part = part.trim().trim_start_matches("...");
        let key: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        let valid = key.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if valid && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Column names of a `CREATE TABLE (...)` body.
fn sql_columns(inner: &str) -> Vec<String> {
    const CONSTRAINTS: [&str; 6] = ["primary", "unique", "foreign", "constraint", "check", "key"];
    top_level(inner, ',')
        .iter()
        .filter_map(|def| {
            let word = def.split_whitespace().next()?.trim_matches('"');
            (!CONSTRAINTS.contains(&word.to_ascii_lowercase().as_str())).then(|| word.to_string())
        })
        .collect()
}

/// The text between an opening bracket at the start of `s` and its match.
fn balanced(s: &str, open: char, close: char) -> Option<&str> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            _ if c == open => depth += 1,
            _ if c == close => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(&s[open.len_utf8()..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at `sep` outside brackets and quotes.
fn top_level(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    let mut prev = ' ';
    for c in s.chars() {
        let arrow = prev == '=' && c == '>';
        prev = c;
        if arrow {
            current.push(c);
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            current.push(c);
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '{' | '[' | '<' => depth += 1,
            ')' | '}' | ']' | '>' => depth -= 1,
            _ if c == sep && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

/// Blanks `//` and `/* */` comments (keeping newlines, so line numbers stay right).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('/', Some('/')) => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                    }
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
            }
            ('\'' | '"' | '`', _) => {
                quote = Some(c);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"
import express from 'express';
import roomsRouter from './routes/rooms';
const app = express();
app.use('/api/rooms', roomsRouter);
// app.post('/api/commented-out', ...)
app.post('/api/users', async (req, res) => {
  const { username, password } = req.body as { username?: string; password?: string };
  res.json({ id: 1 });
});
io.use((socket, next) => { const { token } = socket.handshake.auth; next(); });
io.on('connection', (socket) => {
  socket.on('register', async ({ userId, userName }: { userId: number; userName: string }) => {
    connectedUsers.set(socket.id, { id: userId, name: userName });
  });
  socket.on('join_room', (roomId: number) => {
    socket.join(`room:${roomId}`);
  });
  socket.on('sendMessage', async (data, callback) => {
    const last = lastSent.get(data.userId) ?? 0;
    if (now - last < 250) return;
    io.to(`room:${data.roomId}`).emit('newMessage', { text: data.text });
    callback({ ok: true });
  });
  socket.on('typing', ({ roomId }) => socket.to(roomId).emit('typing', {}));
  socket.on('disconnect', () => {});
});
"#;

    const ROOMS: &str = r#"
const router = express.Router();
router.post('/', (req, res) => { const name = req.body.name; res.json({ id: 2 }); });
router.post('/:roomId/join', (req, res) => res.json({ ok: true }));
export default router;
"#;

    const SCHEMA: &str = r#"
export const messages = pgTable('chat_messages', {
  id: serial('id').primaryKey(),
  roomId: integer('room_id').notNull(),
  body: text('body').notNull(),
  createdAt: timestamp('created_at').defaultNow(),
});
"#;

    #[test]
    fn reads_routes_handlers_auth_tables_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("server/src");
        std::fs::create_dir_all(src.join("routes")).unwrap();
        std::fs::create_dir_all(dir.path().join("server/node_modules/x")).unwrap();
        std::fs::write(src.join("index.ts"), INDEX).unwrap();
        std::fs::write(src.join("routes/rooms.ts"), ROOMS).unwrap();
        std::fs::write(src.join("schema.ts"), SCHEMA).unwrap();
        std::fs::write(dir.path().join("server/node_modules/x/a.js"), INDEX).unwrap();
        let facts = SourceFacts::scan(dir.path()).unwrap();
        assert_eq!(facts.files, 3, "node_modules is not read");
        let posts: Vec<(&str, &[String])> = facts
            .routes
            .iter()
            .map(|r| (r.path.as_str(), r.body_fields.as_slice()))
            .collect();
        let fields = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let users = fields(&["username", "password"]);
        assert!(
            posts.contains(&("/api/users", users.as_slice())),
            "{posts:?}"
        );
        let rooms = fields(&["name"]);
        assert!(
            posts.contains(&("/api/rooms", rooms.as_slice())),
            "{posts:?}"
        );
        assert!(posts.iter().any(|(p, _)| *p == "/api/rooms/:roomId/join"));
        assert!(!posts.iter().any(|(p, _)| p.contains("commented")));
        let by = |e: &str| facts.handlers.iter().find(|h| h.event == e).unwrap();
        let register = by("register");
        assert_eq!(
            register.payload,
            Payload::Fields(vec!["userId".into(), "userName".into()])
        );
        assert!(register.sets_identity && !register.ack);
        let join = by("join_room");
        assert_eq!(join.payload, Payload::Scalar("roomId".into()));
        assert!(join.joins_room);
        let send = by("sendMessage");
        assert!(send.ack);
        assert_eq!(send.room_emits, vec![("newMessage".to_string(), true)]);
        let Payload::Fields(fields) = &send.payload else {
            panic!("{send:?}")
        };
        assert!(fields.contains(&"text".to_string()) && fields.contains(&"roomId".to_string()));
        assert_eq!(by("typing").room_emits, vec![("typing".to_string(), false)]);
        assert!(facts.handlers.iter().all(|h| h.event != "disconnect"));
        assert_eq!(facts.handshake_auth, vec!["token".to_string()]);
        assert_eq!(facts.tables[0].name, "chat_messages");
        assert_eq!(
            facts.tables[0].columns,
            ["id", "room_id", "body", "created_at"]
        );
        assert_eq!(facts.rate_limits.len(), 1);
        assert_eq!(facts.rate_limits[0].per_second, Some(4.0));
    }

    #[test]
    fn candidates_follow_the_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.ts"), INDEX).unwrap();
        std::fs::write(dir.path().join("schema.ts"), SCHEMA).unwrap();
        let facts = SourceFacts::scan(dir.path()).unwrap();
        let c = crate::candidates::Candidates::from_source(&facts);
        assert_eq!(c.identity[0].event, "register");
        assert_eq!(c.joins[0].payload, serde_json::json!("{{room_id}}"));
        assert_eq!(c.sends[0].event, "sendMessage");
        assert_eq!(c.sends[0].payload["text"], "{{content}}");
        assert_eq!(c.auth, serde_json::json!({"token": "{{token}}"}));
        let v = c.verify.unwrap();
        assert_eq!(
            (v.table.as_str(), v.text_column.as_str()),
            ("chat_messages", "body")
        );
        assert_eq!(v.room_column.as_deref(), Some("room_id"));
        assert!(SourceFacts::scan(&dir.path().join("missing")).is_err());
    }
}
