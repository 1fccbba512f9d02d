//! Celery's task results as Celery itself stores them: key names, the meta document's field
//! order, and Python's `json.dumps` formatting, byte for byte, so that Python workers and Wasm
//! applications share one bucket.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Number, Value};

use crate::calendar::UtcTime;
use crate::error::Error;

pub const TASK_KEY_PREFIX: &str = "celery-task-meta-";
pub const GROUP_KEY_PREFIX: &str = "celery-taskset-meta-";

/// Celery's `global_keyprefix`: used as given when it ends in one of `:_-.`, otherwise
/// followed by `_`; nothing when empty.
pub fn global_prefix(prefix: &str) -> String {
    match prefix.chars().last() {
        None => String::new(),
        Some(':' | '_' | '-' | '.') => prefix.to_owned(),
        Some(_) => format!("{prefix}_"),
    }
}

/// `[global prefix]celery-task-meta-<id>`; the store adds its base path in front.
pub fn task_key(global_keyprefix: &str, task_id: &str) -> Result<String, Error> {
    named_key(global_keyprefix, TASK_KEY_PREFIX, task_id, "task")
}

/// `[global prefix]celery-taskset-meta-<id>`.
pub fn group_key(global_keyprefix: &str, group_id: &str) -> Result<String, Error> {
    named_key(global_keyprefix, GROUP_KEY_PREFIX, group_id, "group")
}

fn named_key(global: &str, prefix: &str, id: &str, what: &str) -> Result<String, Error> {
    if id.is_empty() {
        return Err(Error::InvalidKey(format!("the {what} id is empty")));
    }
    Ok(format!("{}{prefix}{id}", global_prefix(global)))
}

/// The states Celery knows; any other name is a custom state, which Celery allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Received,
    Started,
    Success,
    Failure,
    Revoked,
    Rejected,
    Retry,
    Ignored,
    Custom(String),
}

impl State {
    pub fn parse(name: &str) -> State {
        match name {
            "PENDING" => State::Pending,
            "RECEIVED" => State::Received,
            "STARTED" => State::Started,
            "SUCCESS" => State::Success,
            "FAILURE" => State::Failure,
            "REVOKED" => State::Revoked,
            "REJECTED" => State::Rejected,
            "RETRY" => State::Retry,
            "IGNORED" => State::Ignored,
            other => State::Custom(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            State::Pending => "PENDING",
            State::Received => "RECEIVED",
            State::Started => "STARTED",
            State::Success => "SUCCESS",
            State::Failure => "FAILURE",
            State::Revoked => "REVOKED",
            State::Rejected => "REJECTED",
            State::Retry => "RETRY",
            State::Ignored => "IGNORED",
            State::Custom(name) => name,
        }
    }

    /// Finished: Celery records `date_done` only for these.
    pub fn is_ready(&self) -> bool {
        matches!(self, State::Success | State::Failure | State::Revoked)
    }

    /// States whose result is an exception document.
    pub fn is_exception(&self) -> bool {
        matches!(self, State::Failure | State::Retry | State::Revoked)
    }
}

/// Celery's `result_extended` fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Extended {
    pub name: Option<String>,
    pub args: Value,
    pub kwargs: Value,
    pub worker: Option<String>,
    pub retries: Option<i64>,
    pub queue: Option<String>,
}

/// One task's meta document.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMeta {
    pub task_id: String,
    pub state: State,
    pub result: Value,
    pub traceback: Option<String>,
    pub children: Value,
    /// Celery's ISO 8601 form, e.g. `2026-11-25T16:34:09.244119+00:00`.
    pub date_done: Option<String>,
    pub group_id: Option<String>,
    pub parent_id: Option<String>,
    pub extended: Option<Extended>,
}

impl TaskMeta {
    /// What Celery answers for a task it knows nothing about.
    pub fn pending(task_id: &str) -> TaskMeta {
        TaskMeta {
            task_id: task_id.to_owned(),
            state: State::Pending,
            result: Value::Null,
            traceback: None,
            children: Value::Array(Vec::new()),
            date_done: None,
            group_id: None,
            parent_id: None,
            extended: None,
        }
    }

    /// The document in Celery's field order: status, result, traceback, children, date_done,
    /// group_id and parent_id when set, the extended fields, task_id.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), self.state.as_str().into());
        m.insert("result".into(), self.result.clone());
        m.insert("traceback".into(), opt(&self.traceback));
        m.insert("children".into(), self.children.clone());
        m.insert("date_done".into(), opt(&self.date_done));
        if let Some(g) = &self.group_id {
            m.insert("group_id".into(), g.as_str().into());
        }
        if let Some(p) = &self.parent_id {
            m.insert("parent_id".into(), p.as_str().into());
        }
        if let Some(x) = &self.extended {
            m.insert("name".into(), opt(&x.name));
            m.insert("args".into(), x.args.clone());
            m.insert("kwargs".into(), x.kwargs.clone());
            m.insert("worker".into(), opt(&x.worker));
            m.insert("retries".into(), x.retries.map_or(Value::Null, Value::from));
            m.insert("queue".into(), opt(&x.queue));
        }
        m.insert("task_id".into(), self.task_id.as_str().into());
        Value::Object(m)
    }

    /// The bytes Celery's JSON serializer would store for this meta.
    pub fn encode(&self) -> Vec<u8> {
        python_json(&self.to_value()).into_bytes()
    }

    /// Reads a stored meta; a missing or empty value is PENDING, as in Celery.
    pub fn decode(task_id: &str, stored: Option<&[u8]>) -> Result<TaskMeta, Error> {
        let bytes = match stored {
            Some(b) if !b.is_empty() => b,
            _ => return Ok(TaskMeta::pending(task_id)),
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::InvalidValue(format!(
                "the stored meta of task {task_id:?} is not JSON: {e}"
            ))
        })?;
        let Value::Object(mut m) = value else {
            return Err(Error::InvalidValue(format!(
                "the stored meta of task {task_id:?} is not a JSON object"
            )));
        };
        let text = |m: &mut Map<String, Value>, k: &str| match m.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let state = State::parse(&text(&mut m, "status").unwrap_or_else(|| "PENDING".into()));
        let traceback = text(&mut m, "traceback");
        let date_done = text(&mut m, "date_done");
        let group_id = text(&mut m, "group_id");
        let parent_id = text(&mut m, "parent_id");
        let stored_id = text(&mut m, "task_id");
        let extended = if m.contains_key("name") || m.contains_key("args") {
            let (name, worker, queue) = (
                text(&mut m, "name"),
                text(&mut m, "worker"),
                text(&mut m, "queue"),
            );
            Some(Extended {
                name,
                args: m.remove("args").unwrap_or(Value::Null),
                kwargs: m.remove("kwargs").unwrap_or(Value::Null),
                worker,
                retries: m.remove("retries").and_then(|v| v.as_i64()),
                queue,
            })
        } else {
            None
        };
        Ok(TaskMeta {
            task_id: stored_id.unwrap_or_else(|| task_id.to_owned()),
            state,
            result: m.remove("result").unwrap_or(Value::Null),
            traceback,
            children: m.remove("children").unwrap_or(Value::Array(Vec::new())),
            date_done,
            group_id,
            parent_id,
            extended,
        })
    }
}

fn opt(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, Value::from)
}

/// Celery's document for an exception result.
pub fn exception(exc_type: &str, exc_message: Vec<Value>, exc_module: &str) -> Value {
    let mut m = Map::new();
    m.insert("exc_type".into(), exc_type.into());
    m.insert("exc_message".into(), Value::Array(exc_message));
    m.insert("exc_module".into(), exc_module.into());
    Value::Object(m)
}

/// `datetime.now(timezone.utc).isoformat()`: microseconds, omitted when zero, and `+00:00`.
pub fn date_done(time: SystemTime) -> String {
    let t = UtcTime::new(time);
    let micros = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_micros();
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str("+00:00");
    out
}

/// `json.dumps(value)` with Python's defaults: `", "` and `": "` separators, every character
/// outside printable ASCII escaped as `\uXXXX` (surrogate pairs above U+FFFF), and numbers
/// written as Python writes the int or float they parse to.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The number's text is kept as parsed (serde_json's `arbitrary_precision`), so integers of
/// any size survive; floats are re-written the way Python's `repr(float)` writes them.
fn write_number(n: &Number, out: &mut String) {
    let text = n.to_string();
    let is_integer = !text.contains(['.', 'e', 'E']);
    if is_integer {
        let digits = text.trim_start_matches('-');
        if digits.bytes().all(|b| b == b'0') {
            out.push('0');
        } else {
            out.push_str(&text);
        }
        return;
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => out.push_str(&python_float_repr(f)),
        _ => out.push_str(&text),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in [-4, 16), otherwise `d.ddde+XX`; fixed notation always shows `.0`.
pub fn python_float_repr(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Position of the decimal point after the first digit, as Python counts it.
    let decpt = exp + 1;
    if !(-4 < decpt && decpt <= 16) {
        let mut m = digits[..1].to_owned();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        format!(
            "{}.{}",
            &digits[..decpt as usize],
            &digits[decpt as usize..]
        )
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests;
