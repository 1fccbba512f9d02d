//! The typed API over one `task-store` resource: Celery task results.

use s3_result_store::celery::{Extended, State, TaskMeta};
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::{self, tasks as wit};
use crate::driver::Driver;
use crate::error::Error;
use crate::state::HostState;

/// Celery's result backend over one bucket, backed by its own component instance.
pub struct TaskStore {
    store: Store<HostState>,
    guest: wit::Guest,
    resource: ResourceAny,
    driver: Driver,
}

impl TaskStore {
    pub(crate) fn open(
        mut store: Store<HostState>,
        guest: wit::Guest,
        driver: Driver,
        config: &s3_result_store::ConfigInput,
        global_keyprefix: Option<&str>,
    ) -> Result<TaskStore, Error> {
        let config = bindings::wit_config(config);
        let resource = driver
            .run(
                guest
                    .task_store()
                    .call_open(&mut store, &config, global_keyprefix),
            )?
            .map_err(bindings::core_error)?;
        Ok(TaskStore {
            store,
            guest,
            resource,
            driver,
        })
    }

    /// Stores `meta` as Celery does; returns what is stored now (a stored SUCCESS stays).
    pub fn store_result(&mut self, meta: &TaskMeta) -> Result<TaskMeta, Error> {
        let guest = self.guest.task_store();
        let stored = self
            .driver
            .run(guest.call_store_result(&mut self.store, self.resource, &wit_meta(meta)))?
            .map_err(bindings::core_error)?;
        core_meta(stored)
    }

    /// The task's meta; PENDING when nothing is stored.
    pub fn get_meta(&mut self, task_id: &str) -> Result<TaskMeta, Error> {
        let guest = self.guest.task_store();
        let meta = self
            .driver
            .run(guest.call_get_meta(&mut self.store, self.resource, task_id))?
            .map_err(bindings::core_error)?;
        core_meta(meta)
    }

    /// The task's meta as Celery's JSON document: the stored bytes, or Celery's PENDING
    /// document when nothing is stored.
    pub fn get_document(&mut self, task_id: &str) -> Result<String, Error> {
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_get_document(&mut self.store, self.resource, task_id))?
            .map_err(bindings::core_error)?)
    }

    /// Many metas in one call, read concurrently by the component.
    pub fn get_many(&mut self, task_ids: &[&str]) -> Result<Vec<Result<TaskMeta, Error>>, Error> {
        let ids: Vec<String> = task_ids.iter().map(|s| (*s).to_owned()).collect();
        let guest = self.guest.task_store();
        let metas = self
            .driver
            .run(guest.call_get_many(&mut self.store, self.resource, &ids))?;
        Ok(metas
            .into_iter()
            .map(|r| {
                r.map_err(bindings::core_error)
                    .map_err(Error::from)
                    .and_then(core_meta)
            })
            .collect())
    }

    pub fn forget(&mut self, task_id: &str) -> Result<(), Error> {
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_forget(&mut self.store, self.resource, task_id))?
            .map_err(bindings::core_error)?)
    }

    pub fn save_group(&mut self, group_id: &str, task_ids: &[&str]) -> Result<(), Error> {
        let ids: Vec<String> = task_ids.iter().map(|s| (*s).to_owned()).collect();
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_save_group(&mut self.store, self.resource, group_id, &ids))?
            .map_err(bindings::core_error)?)
    }

    pub fn restore_group(&mut self, group_id: &str) -> Result<Option<Vec<String>>, Error> {
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_restore_group(&mut self.store, self.resource, group_id))?
            .map_err(bindings::core_error)?)
    }

    pub fn forget_group(&mut self, group_id: &str) -> Result<(), Error> {
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_forget_group(&mut self.store, self.resource, group_id))?
            .map_err(bindings::core_error)?)
    }
}

impl TaskStore {
    /// Deletes task and group results older than `older_than`; returns how many.
    pub fn cleanup(&mut self, older_than: std::time::Duration) -> Result<u64, Error> {
        let guest = self.guest.task_store();
        Ok(self
            .driver
            .run(guest.call_cleanup(&mut self.store, self.resource, older_than.as_secs()))?
            .map_err(bindings::core_error)?)
    }
}

impl Drop for TaskStore {
    fn drop(&mut self) {
        if self.driver.can_run() {
            let _ = self
                .driver
                .run(self.resource.resource_drop_async(&mut self.store));
        }
    }
}

fn wit_meta(m: &TaskMeta) -> wit::TaskMeta {
    let text = |v: &Value| v.to_string();
    wit::TaskMeta {
        task_id: m.task_id.clone(),
        state: match &m.state {
            State::Pending => wit::TaskState::Pending,
            State::Received => wit::TaskState::Received,
            State::Started => wit::TaskState::Started,
            State::Success => wit::TaskState::Success,
            State::Failure => wit::TaskState::Failure,
            State::Revoked => wit::TaskState::Revoked,
            State::Rejected => wit::TaskState::Rejected,
            State::Retry => wit::TaskState::Retry,
            State::Ignored => wit::TaskState::Ignored,
            State::Custom(name) => wit::TaskState::Custom(name.clone()),
        },
        result_json: text(&m.result),
        traceback: m.traceback.clone(),
        children_json: text(&m.children),
        date_done: m.date_done.clone(),
        group_id: m.group_id.clone(),
        parent_id: m.parent_id.clone(),
        extended: m.extended.as_ref().map(|x| wit::TaskExtended {
            name: x.name.clone(),
            args_json: text(&x.args),
            kwargs_json: text(&x.kwargs),
            worker: x.worker.clone(),
            retries: x.retries,
            queue: x.queue.clone(),
        }),
    }
}

fn core_meta(m: wit::TaskMeta) -> Result<TaskMeta, Error> {
    let json = |field: &str, text: &str| -> Result<Value, Error> {
        serde_json::from_str(text).map_err(|e| {
            Error::Store(s3_result_store::Error::InvalidValue(format!(
                "the component returned {field} that is not JSON: {e}"
            )))
        })
    };
    let extended = match m.extended {
        Some(x) => Some(Extended {
            args: json("args-json", &x.args_json)?,
            kwargs: json("kwargs-json", &x.kwargs_json)?,
            name: x.name,
            worker: x.worker,
            retries: x.retries,
            queue: x.queue,
        }),
        None => None,
    };
    Ok(TaskMeta {
        state: match m.state {
            wit::TaskState::Pending => State::Pending,
            wit::TaskState::Received => State::Received,
            wit::TaskState::Started => State::Started,
            wit::TaskState::Success => State::Success,
            wit::TaskState::Failure => State::Failure,
            wit::TaskState::Revoked => State::Revoked,
            wit::TaskState::Rejected => State::Rejected,
            wit::TaskState::Retry => State::Retry,
            wit::TaskState::Ignored => State::Ignored,
            wit::TaskState::Custom(name) => State::parse(&name),
        },
        result: json("result-json", &m.result_json)?,
        children: json("children-json", &m.children_json)?,
        traceback: m.traceback,
        date_done: m.date_done,
        group_id: m.group_id,
        parent_id: m.parent_id,
        extended,
        task_id: m.task_id,
    })
}
