//! The SQL subset of the test server: `SELECT` parsing and evaluation over the tables.

use super::*;

/// What a `SELECT` returns.
#[derive(Debug, Clone)]
pub(super) enum Projection {
    /// `*`: whole rows.
    All,
    /// `COUNT(*) [AS alias]`.
    Count(String),
    /// `a, b, c`: these columns.
    Columns(Vec<usize>),
}

/// A parsed `SELECT` (the subset this server understands).
#[derive(Debug, Clone)]
pub(super) struct Select {
    pub(super) table: Arc<TableSchema>,
    pub(super) projection: Projection,
    pub(super) filters: Vec<(usize, AlgebraicValue)>,
    pub(super) limit: Option<usize>,
}

impl Select {
    pub(super) fn matches(&self, row: &ProductValue) -> bool {
        self.filters
            .iter()
            .all(|(col, v)| row.elements.get(*col) == Some(v))
    }

    /// Subscriptions and one-off queries must return whole rows.
    pub(super) fn whole_rows(&self) -> bool {
        matches!(self.projection, Projection::All) && self.limit.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// A bare or double-quoted identifier (bare ones may be keywords).
    Ident {
        text: String,
        quoted: bool,
    },
    Number(String),
    Str(String),
    Symbol(char),
}

pub(super) fn tokenize(sql: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            text.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(other) => text.push(other),
                    None => bail!("unterminated {c}…{c} in `{sql}`"),
                }
            }
            tokens.push(if c == '\'' {
                Token::Str(text)
            } else {
                Token::Ident { text, quoted: true }
            });
        } else if c.is_ascii_digit() || c == '-' {
            let mut text = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '-' || d == '.' {
                    text.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Number(text));
        } else if c.is_alphabetic() || c == '_' {
            let mut text = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    text.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Ident {
                text,
                quoted: false,
            });
        } else if "*=(),;".contains(c) {
            tokens.push(Token::Symbol(c));
            chars.next();
        } else {
            bail!(
                "unexpected `{c}` in `{sql}` (this server understands SELECT with `col = literal` filters)"
            );
        }
    }
    Ok(tokens)
}

pub(super) struct Parser<'a> {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    pub(super) sql: &'a str,
}

impl Parser<'_> {
    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn next(&mut self) -> Result<Token> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| anyhow!("`{}` ends too early", self.sql))?;
        self.pos += 1;
        Ok(t)
    }

    pub(super) fn keyword(&mut self, kw: &str) -> bool {
        let hit = matches!(self.peek(), Some(Token::Ident { text, quoted: false }) if text.eq_ignore_ascii_case(kw));
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub(super) fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        if self.keyword(kw) {
            Ok(())
        } else {
            bail!("expected {kw} in `{}`", self.sql)
        }
    }

    pub(super) fn symbol(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Token::Symbol(c));
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub(super) fn expect_symbol(&mut self, c: char) -> Result<()> {
        if self.symbol(c) {
            Ok(())
        } else {
            bail!("expected `{c}` in `{}`", self.sql)
        }
    }

    pub(super) fn ident(&mut self) -> Result<String> {
        match self.next()? {
            Token::Ident { text, .. } => Ok(text),
            other => bail!("expected a name, found {other:?} in `{}`", self.sql),
        }
    }
}

/// Parses `SELECT (* | COUNT(*) [AS a] | col, …) FROM t [WHERE col = literal [AND …]] [LIMIT n]`.
pub(super) fn parse_select(schema: &ModuleSchema, sql: &str) -> Result<Select> {
    enum Proj {
        All,
        Count(String),
        Names(Vec<String>),
    }
    let mut p = Parser {
        tokens: tokenize(sql)?,
        pos: 0,
        sql,
    };
    p.expect_keyword("SELECT")?;
    let proj = if p.symbol('*') {
        Proj::All
    } else if p.keyword("COUNT") {
        p.expect_symbol('(')?;
        p.expect_symbol('*')?;
        p.expect_symbol(')')?;
        Proj::Count(if p.keyword("AS") {
            p.ident()?
        } else {
            "count".to_string()
        })
    } else {
        let mut names = vec![p.ident()?];
        while p.symbol(',') {
            names.push(p.ident()?);
        }
        Proj::Names(names)
    };
    p.expect_keyword("FROM")?;
    let table = schema.table(&p.ident()?)?.clone();
    let projection = match proj {
        Proj::All => Projection::All,
        Proj::Count(alias) => Projection::Count(alias),
        Proj::Names(names) => Projection::Columns(
            names
                .iter()
                .map(|n| table.column_index(n))
                .collect::<Result<_>>()?,
        ),
    };
    let mut filters = Vec::new();
    if p.keyword("WHERE") {
        loop {
            let col = table.column_index(&p.ident()?)?;
            p.expect_symbol('=')
                .map_err(|_| anyhow!("only `col = literal` conditions are supported in `{sql}`"))?;
            let json = match p.next()? {
                Token::Str(s) => Json::String(s),
                Token::Number(n) if n.starts_with("0x") || n.starts_with("0X") => Json::String(n),
                Token::Number(n) => serde_json::from_str::<Json>(&n)
                    .map_err(|_| anyhow!("cannot read the number `{n}`"))?,
                Token::Ident {
                    text,
                    quoted: false,
                } if text.eq_ignore_ascii_case("true") => Json::Bool(true),
                Token::Ident {
                    text,
                    quoted: false,
                } if text.eq_ignore_ascii_case("false") => Json::Bool(false),
                other => bail!("expected a literal, found {other:?} in `{sql}`"),
            };
            let ty = &table.columns[col].ty;
            let value = match ty.as_option() {
                Some(inner) => AlgebraicValue::OptionSome(json_to_value(&json, inner)?),
                None => json_to_value(&json, ty)?,
            };
            filters.push((col, value));
            if !p.keyword("AND") {
                break;
            }
        }
    }
    let limit = if p.keyword("LIMIT") {
        match p.next()? {
            Token::Number(n) => Some(n.parse().map_err(|_| anyhow!("bad LIMIT `{n}`"))?),
            other => bail!("expected a number after LIMIT, found {other:?}"),
        }
    } else {
        None
    };
    p.symbol(';');
    if let Some(extra) = p.peek() {
        bail!(
            "unsupported SQL at {extra:?} in `{sql}` (this server understands \
             SELECT … FROM t [WHERE col = literal [AND …]] [LIMIT n])"
        );
    }
    Ok(Select {
        table,
        projection,
        filters,
        limit,
    })
}

pub(super) fn row_list(rows: &[&ProductValue]) -> BsatnRowList {
    let mut data = Vec::new();
    let mut offsets = Vec::with_capacity(rows.len());
    for row in rows {
        offsets.push(data.len() as u64);
        // Encoding into a Vec cannot fail.
        let _ = bsatn::to_writer(&mut data, *row);
    }
    BsatnRowList::new(RowSizeHint::RowOffsets(offsets.into()), data.into())
}

pub(super) fn query_rows(inner: &Inner, selects: &[Select]) -> QueryRows {
    let tables = selects
        .iter()
        .map(|s| {
            let rows: Vec<&ProductValue> = inner
                .tables
                .get(&s.table.name)
                .map(|rows| rows.iter().filter(|r| s.matches(r)).collect())
                .unwrap_or_default();
            SingleTableRows {
                table: s.table.name.clone().into(),
                rows: row_list(&rows),
            }
        })
        .collect();
    QueryRows { tables }
}

/// Splits SQL text at `;` outside quotes, dropping empty statements.
pub(super) fn split_statements(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}
