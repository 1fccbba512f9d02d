//! Celery's result backend over the store: task metas and group results under Celery's keys,
//! with Celery's rules (a stored SUCCESS is never overwritten; missing means PENDING).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::bulk;
use crate::celery::{self, State, TaskMeta};
use crate::conditional::Update;
use crate::error::Error;
use crate::store::{Store, System, Transport};

pub struct TaskStore<T, S> {
    store: Store<T, S>,
    global_keyprefix: String,
}

impl<T: Transport, S: System> TaskStore<T, S> {
    /// `global_keyprefix` is Celery's `result_backend_transport_options["global_keyprefix"]`.
    pub fn new(store: Store<T, S>, global_keyprefix: &str) -> Self {
        TaskStore {
            store,
            global_keyprefix: global_keyprefix.to_owned(),
        }
    }

    pub fn store(&self) -> &Store<T, S> {
        &self.store
    }

    /// Writes `meta` as Celery would, and returns what the task's meta now is. Ready states get
    /// `date_done` (now, unless given); other states never carry one. As in Celery, a task
    /// whose stored state is SUCCESS keeps it: the write is skipped and the stored meta
    /// returned; unlike Celery, also when the SUCCESS lands between the read and the write.
    pub fn store_result(&self, mut meta: TaskMeta) -> Result<TaskMeta, Error> {
        let key = celery::task_key(&self.global_keyprefix, &meta.task_id)?;
        if meta.state.is_ready() {
            if meta.date_done.is_none() {
                meta.date_done = Some(celery::date_done(self.store.now()));
            }
        } else {
            meta.date_done = None;
        }
        // Celery reads, then writes: a SUCCESS stored in between is overwritten. Here the write
        // is conditional on the version read, so it cannot be. (A server that ignores the
        // precondition, like Garage, gives Celery's behaviour; no worse.)
        let body = meta.encode();
        self.store.update(&key, |stored| {
            let current = TaskMeta::decode(&meta.task_id, stored)?;
            Ok(if current.state == State::Success {
                Update::Keep(current)
            } else {
                Update::Write(body.clone(), meta.clone())
            })
        })
    }

    /// The task's meta; PENDING when nothing is stored.
    pub fn get_meta(&self, task_id: &str) -> Result<TaskMeta, Error> {
        let key = celery::task_key(&self.global_keyprefix, task_id)?;
        TaskMeta::decode(task_id, self.store.get(&key)?.as_deref())
    }

    /// The task's meta as Celery's JSON document: the stored bytes exactly, once they are
    /// checked to be a task meta; Celery's PENDING document when nothing is stored. For
    /// serving Celery's own format without decoding and encoding it again.
    pub fn get_document(&self, task_id: &str) -> Result<String, Error> {
        let key = celery::task_key(&self.global_keyprefix, task_id)?;
        match self.store.get(&key)? {
            Some(bytes) if !bytes.is_empty() => {
                TaskMeta::decode(task_id, Some(&bytes))?;
                String::from_utf8(bytes).map_err(|_| {
                    Error::InvalidValue(format!("the stored meta of task {task_id:?} is not UTF-8"))
                })
            }
            _ => Ok(celery::python_json(&TaskMeta::pending(task_id).to_value())),
        }
    }

    /// Many metas in one call, the reads in flight together. One result per id, in order.
    pub fn get_many(&self, task_ids: &[&str]) -> Vec<Result<TaskMeta, Error>> {
        let keys: Vec<Result<String, Error>> = task_ids
            .iter()
            .map(|id| celery::task_key(&self.global_keyprefix, id))
            .collect();
        let valid: Vec<&str> = keys.iter().filter_map(|k| k.as_deref().ok()).collect();
        let mut values = self.store.get_many(&valid).into_iter();
        task_ids
            .iter()
            .zip(keys)
            .map(|(id, key)| {
                key?;
                let value = values
                    .next()
                    .unwrap_or_else(|| Err(Error::Transport("no response".into())))?;
                TaskMeta::decode(id, value.as_deref())
            })
            .collect()
    }

    /// Celery's `forget`: removes the task's meta.
    pub fn forget(&self, task_id: &str) -> Result<(), Error> {
        self.store
            .delete(&celery::task_key(&self.global_keyprefix, task_id)?)
    }

    /// Celery's `GroupResult.save()` for a group of plain tasks:
    /// `{"result": [[group_id, null], [[[task_id, null], null], ...]]}`.
    pub fn save_group(&self, group_id: &str, task_ids: &[&str]) -> Result<(), Error> {
        let key = celery::group_key(&self.global_keyprefix, group_id)?;
        let children: Vec<Value> = task_ids
            .iter()
            .map(|id| json!([[id, null], null]))
            .collect();
        let document = json!({ "result": [[group_id, null], children] });
        self.store
            .set(&key, celery::python_json(&document).into_bytes())
    }

    /// The task ids of a saved group; none when the group was never saved (or was forgotten).
    pub fn restore_group(&self, group_id: &str) -> Result<Option<Vec<String>>, Error> {
        let key = celery::group_key(&self.global_keyprefix, group_id)?;
        let Some(bytes) = self.store.get(&key)? else {
            return Ok(None);
        };
        let invalid = |why: &str| {
            Error::InvalidValue(format!(
                "the stored group {group_id:?} is not a Celery group: {why}"
            ))
        };
        let document: Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
        let children = document
            .get("result")
            .and_then(|r| r.get(1))
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("no result list"))?;
        children
            .iter()
            .map(|child| {
                child
                    .get(0)
                    .and_then(|c| c.get(0))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("a member without a task id"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Deletes the task and group results last written more than `older_than` ago under the
    /// store's prefix (base path and global key prefix): what Celery's `result_expires` does
    /// for other backends and cannot do for S3. Lists with ListObjectsV2, deletes in
    /// DeleteObjects batches of up to 1000. Safe to run again and concurrently: a result
    /// already gone counts as deleted. Returns how many were deleted.
    pub fn cleanup(&self, older_than: Duration) -> Result<u64, Error> {
        let config = self.store.config();
        let cutoff = self
            .store
            .now()
            .checked_sub(older_than)
            .unwrap_or(UNIX_EPOCH);
        let global = celery::global_prefix(&self.global_keyprefix);
        let mut deleted = 0u64;
        for kind in [celery::TASK_KEY_PREFIX, celery::GROUP_KEY_PREFIX] {
            let prefix = format!("{}{global}{kind}", config.base_path);
            let mut token: Option<String> = None;
            loop {
                let mut list = bulk::list_objects_request(config, &prefix, token.as_deref(), 1000)?;
                let page = self
                    .store
                    .run(&mut list, |r| bulk::parse_list_objects(&config.bucket, r))?;
                let old: Vec<String> = page
                    .objects
                    .into_iter()
                    .filter(|o| o.last_modified < cutoff)
                    .map(|o| o.key)
                    .collect();
                for batch in old.chunks(bulk::MAX_DELETE_KEYS) {
                    let mut delete = bulk::delete_objects_request(config, batch)?;
                    let outcome = self.store.run(&mut delete, |r| {
                        bulk::parse_delete_objects(&config.bucket, r, batch.len())
                    })?;
                    deleted += outcome.deleted as u64;
                    if let Some((key, code, message)) = outcome.errors.into_iter().next() {
                        return Err(Error::S3(crate::error::S3ErrorInfo {
                            status: 200,
                            code,
                            message: format!(
                                "could not delete {key:?} ({deleted} deleted before): {message}"
                            ),
                            request_id: None,
                        }));
                    }
                }
                match page.next_continuation_token {
                    Some(next) if page.is_truncated => token = Some(next),
                    _ => break,
                }
            }
        }
        Ok(deleted)
    }

    /// Celery's `delete_group`.
    pub fn forget_group(&self, group_id: &str) -> Result<(), Error> {
        self.store
            .delete(&celery::group_key(&self.global_keyprefix, group_id)?)
    }
}

#[cfg(test)]
mod tests;
