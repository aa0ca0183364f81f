//! The chat module's reducers, run against the in-memory tables.

use super::*;

pub(super) fn identity_value(id: Identity) -> AlgebraicValue {
    AlgebraicValue::product([AlgebraicValue::U256(Box::new(id.to_u256()))])
}

pub(super) fn as_u64(v: &AlgebraicValue) -> Option<u64> {
    match v {
        AlgebraicValue::U64(x) => Some(*x),
        _ => None,
    }
}

pub(super) fn as_str(v: &AlgebraicValue) -> Option<&str> {
    match v {
        AlgebraicValue::String(s) => Some(s),
        _ => None,
    }
}

/// Runs a chat reducer against the tables; `Err(msg)` means the reducer returned an error.
impl Inner {
    /// The next row id (ids are shared by every table).
    pub(super) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a row to `table` and records the insertion among `changes`.
    pub(super) fn insert(&mut self, table: &str, row: Vec<AlgebraicValue>, changes: &mut Changes) {
        let row = ProductValue::from(row);
        self.tables
            .entry(table.into())
            .or_default()
            .push(row.clone());
        changes.push((table.into(), vec![row], vec![]));
    }

    /// Makes `member` a member of room `room_id`.
    pub(super) fn add_member(
        &mut self,
        room_id: u64,
        member: AlgebraicValue,
        changes: &mut Changes,
    ) {
        let id = self.new_id();
        self.insert(
            "room_member",
            vec![
                AlgebraicValue::U64(id),
                AlgebraicValue::U64(room_id),
                member,
            ],
            changes,
        );
    }

    pub(super) fn check_room(&self, room_id: u64) -> Result<(), String> {
        let exists = self.tables.get("room").is_some_and(|rooms| {
            rooms
                .iter()
                .any(|r| as_u64(&r.elements[0]) == Some(room_id))
        });
        if exists {
            Ok(())
        } else {
            Err(format!("room {room_id} not found"))
        }
    }

    pub(super) fn is_member(&self, room_id: u64, who: &AlgebraicValue) -> bool {
        self.tables.get("room_member").is_some_and(|members| {
            members
                .iter()
                .any(|m| as_u64(&m.elements[1]) == Some(room_id) && m.elements[2] == *who)
        })
    }
}

pub(super) fn run_reducer(
    inner: &mut Inner,
    caller: Identity,
    reducer: &str,
    args: &ProductValue,
) -> Result<Changes, String> {
    let arg = |i: usize| {
        args.elements
            .get(i)
            .ok_or_else(|| format!("missing argument {i}"))
    };
    let me = identity_value(caller);
    let mut changes: Changes = Vec::new();
    match reducer {
        "set_name" => {
            let name = as_str(arg(0)?)
                .ok_or("name must be a string")?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err("name must not be empty".into());
            }
            let users = inner.tables.entry("user".into()).or_default();
            let old = users
                .iter()
                .position(|r| r.elements[0] == me)
                .map(|i| users.remove(i));
            let row = ProductValue::from(vec![
                me.clone(),
                AlgebraicValue::OptionSome(AlgebraicValue::String(name.into())),
                AlgebraicValue::Bool(true),
            ]);
            users.push(row.clone());
            changes.push(("user".into(), vec![row], old.into_iter().collect()));
        }
        "create_room" => {
            let name = as_str(arg(0)?)
                .ok_or("name must be a string")?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err("room name must not be empty".into());
            }
            let room_id = inner.new_id();
            inner.insert(
                "room",
                vec![
                    AlgebraicValue::U64(room_id),
                    AlgebraicValue::String(name.into()),
                    me.clone(),
                ],
                &mut changes,
            );
            inner.add_member(room_id, me, &mut changes);
        }
        "join_room" => {
            let room_id = as_u64(arg(0)?).ok_or("room_id must be a u64")?;
            inner.check_room(room_id)?;
            if !inner.is_member(room_id, &me) {
                inner.add_member(room_id, me, &mut changes);
            }
        }
        "send_message" => {
            let room_id = as_u64(arg(0)?).ok_or("room_id must be a u64")?;
            let text = as_str(arg(1)?).ok_or("text must be a string")?.to_string();
            if text.trim().is_empty() {
                return Err("message text must not be empty".into());
            }
            inner.check_room(room_id)?;
            if !inner.is_member(room_id, &me) {
                return Err(format!("not a member of room {room_id}"));
            }
            let id = inner.new_id();
            inner.insert(
                "message",
                vec![
                    AlgebraicValue::U64(id),
                    AlgebraicValue::U64(room_id),
                    me,
                    AlgebraicValue::String(text.into()),
                    AlgebraicValue::product([AlgebraicValue::I64(
                        Timestamp::now().to_micros_since_unix_epoch(),
                    )]),
                ],
                &mut changes,
            );
        }
        other => return Err(format!("no reducer `{other}` in the chat module")),
    }
    Ok(changes)
}
