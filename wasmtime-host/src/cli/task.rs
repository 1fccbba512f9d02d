//! `task`: Celery task metas, printed as the JSON documents Celery stores.

use std::process::ExitCode;

use clap::Subcommand;
use s3_result_store_host::celery::{State, TaskMeta, python_json};
use s3_result_store_host::{Error, StoreError, TaskStore};
use serde_json::Value;

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Print each task's meta, one JSON document per line (PENDING when unknown). Several ids
    /// are read concurrently.
    Get {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Store a task's result as Celery does (a stored SUCCESS is kept) and print the meta.
    Put {
        id: String,
        /// SUCCESS, FAILURE, STARTED, RETRY, REVOKED, PENDING, ... or a custom state.
        #[arg(long, default_value = "SUCCESS")]
        state: String,
        /// The result as JSON; for FAILURE, an exception document
        /// '{"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}'.
        #[arg(long, default_value = "null")]
        result: String,
        #[arg(long)]
        traceback: Option<String>,
        /// ISO 8601 date for ready states (default: now).
        #[arg(long)]
        date_done: Option<String>,
    },
    /// Remove a task's meta (Celery's forget).
    Forget { id: String },
}

/// Task ids read per `get-many` call.
const GET_CHUNK: usize = 256;

pub fn run(tasks: &mut TaskStore, command: TaskCommand) -> Result<ExitCode, Error> {
    match command {
        TaskCommand::Get { ids } => {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            // In chunks, so a long list shows progress and prints as it goes.
            let bar = (refs.len() > GET_CHUNK)
                .then(|| crate::cli::progress::bar(refs.len() as u64, "tasks read"));
            for chunk in refs.chunks(GET_CHUNK) {
                let mut out = String::new();
                for meta in tasks.get_many(chunk)? {
                    out.push_str(&python_json(&meta?.to_value()));
                    out.push('\n');
                }
                crate::write_stdout(out.as_bytes())?;
                if let Some(bar) = &bar {
                    bar.inc(chunk.len() as u64);
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        }
        TaskCommand::Put {
            id,
            state,
            result,
            traceback,
            date_done,
        } => {
            let result: Value = serde_json::from_str(&result).map_err(|e| {
                Error::Store(StoreError::InvalidValue(format!(
                    "--result is not JSON: {e}"
                )))
            })?;
            let meta = TaskMeta {
                state: State::parse(&state),
                result,
                traceback,
                date_done,
                ..TaskMeta::pending(&id)
            };
            let stored = tasks.store_result(&meta)?;
            crate::write_stdout(format!("{}\n", python_json(&stored.to_value())).as_bytes())?;
        }
        TaskCommand::Forget { id } => tasks.forget(&id)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `3600`, `90s`, `30m`, `12h`, `7d`.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an age like 3600, 90s, 30m, 12h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    n.checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long an age"))
}

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages() {
        assert_eq!(parse_age("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_age("7w").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
