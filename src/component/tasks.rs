//! Export glue of the `tasks` interface: WIT records to the core's `TaskMeta` and back.

use serde_json::Value;

use super::exports::result_store::s3::tasks::{
    self as wit_tasks, GuestTaskStore, TaskExtended, TaskMeta as WitMeta, TaskState,
};
use super::{Component, WasiSystem, config_input, transport, wit, wit_error};
use crate::celery::{Extended, State, TaskMeta, python_json};
use crate::config::Config;
use crate::error::Error;
use crate::store::Store;
use crate::tasks::TaskStore;

impl wit_tasks::Guest for Component {
    type TaskStore = TaskStoreResource;
}

pub struct TaskStoreResource {
    tasks: TaskStore<transport::WasiHttp, WasiSystem>,
}

impl GuestTaskStore for TaskStoreResource {
    fn open(
        config: wit::Config,
        global_keyprefix: Option<String>,
    ) -> Result<wit_tasks::TaskStore, wit::Error> {
        let input = config_input(config);
        let config = Config::resolve(&input, wasi::cli::environment::get_environment())
            .map_err(wit_error)?;
        let store = Store::new(config, transport::WasiHttp, WasiSystem);
        Ok(wit_tasks::TaskStore::new(TaskStoreResource {
            tasks: TaskStore::new(store, global_keyprefix.as_deref().unwrap_or("")),
        }))
    }

    fn store_result(&self, meta: WitMeta) -> Result<WitMeta, wit::Error> {
        let meta = core_meta(meta).map_err(wit_error)?;
        self.tasks
            .store_result(meta)
            .map(wit_meta)
            .map_err(wit_error)
    }

    fn get_meta(&self, task_id: String) -> Result<WitMeta, wit::Error> {
        self.tasks
            .get_meta(&task_id)
            .map(wit_meta)
            .map_err(wit_error)
    }

    fn get_document(&self, task_id: String) -> Result<String, wit::Error> {
        self.tasks.get_document(&task_id).map_err(wit_error)
    }

    fn get_many(&self, task_ids: Vec<String>) -> Vec<Result<WitMeta, wit::Error>> {
        let ids: Vec<&str> = task_ids.iter().map(String::as_str).collect();
        self.tasks
            .get_many(&ids)
            .into_iter()
            .map(|r| r.map(wit_meta).map_err(wit_error))
            .collect()
    }

    fn forget(&self, task_id: String) -> Result<(), wit::Error> {
        self.tasks.forget(&task_id).map_err(wit_error)
    }

    fn save_group(&self, group_id: String, task_ids: Vec<String>) -> Result<(), wit::Error> {
        let ids: Vec<&str> = task_ids.iter().map(String::as_str).collect();
        self.tasks.save_group(&group_id, &ids).map_err(wit_error)
    }

    fn restore_group(&self, group_id: String) -> Result<Option<Vec<String>>, wit::Error> {
        self.tasks.restore_group(&group_id).map_err(wit_error)
    }

    fn forget_group(&self, group_id: String) -> Result<(), wit::Error> {
        self.tasks.forget_group(&group_id).map_err(wit_error)
    }

    fn cleanup(&self, older_than_seconds: u64) -> Result<u64, wit::Error> {
        self.tasks
            .cleanup(std::time::Duration::from_secs(older_than_seconds))
            .map_err(wit_error)
    }
}

fn json(field: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::InvalidValue(format!("{field} is not JSON: {e}")))
}

fn core_meta(m: WitMeta) -> Result<TaskMeta, Error> {
    let extended = match m.extended {
        Some(x) => Some(Extended {
            name: x.name,
            args: json("args-json", &x.args_json)?,
            kwargs: json("kwargs-json", &x.kwargs_json)?,
            worker: x.worker,
            retries: x.retries,
            queue: x.queue,
        }),
        None => None,
    };
    Ok(TaskMeta {
        state: core_state(m.state),
        result: json("result-json", &m.result_json)?,
        traceback: m.traceback,
        children: json("children-json", &m.children_json)?,
        date_done: m.date_done,
        group_id: m.group_id,
        parent_id: m.parent_id,
        extended,
        task_id: m.task_id,
    })
}

fn wit_meta(m: TaskMeta) -> WitMeta {
    WitMeta {
        state: wit_state(&m.state),
        result_json: python_json(&m.result),
        traceback: m.traceback,
        children_json: python_json(&m.children),
        date_done: m.date_done,
        group_id: m.group_id,
        parent_id: m.parent_id,
        extended: m.extended.map(|x| TaskExtended {
            name: x.name,
            args_json: python_json(&x.args),
            kwargs_json: python_json(&x.kwargs),
            worker: x.worker,
            retries: x.retries,
            queue: x.queue,
        }),
        task_id: m.task_id,
    }
}

fn core_state(s: TaskState) -> State {
    match s {
        TaskState::Pending => State::Pending,
        TaskState::Received => State::Received,
        TaskState::Started => State::Started,
        TaskState::Success => State::Success,
        TaskState::Failure => State::Failure,
        TaskState::Revoked => State::Revoked,
        TaskState::Rejected => State::Rejected,
        TaskState::Retry => State::Retry,
        TaskState::Ignored => State::Ignored,
        // A custom name that is really a known state reads back as that state.
        TaskState::Custom(name) => State::parse(&name),
    }
}

fn wit_state(s: &State) -> TaskState {
    match s {
        State::Pending => TaskState::Pending,
        State::Received => TaskState::Received,
        State::Started => TaskState::Started,
        State::Success => TaskState::Success,
        State::Failure => TaskState::Failure,
        State::Revoked => TaskState::Revoked,
        State::Rejected => TaskState::Rejected,
        State::Retry => TaskState::Retry,
        State::Ignored => TaskState::Ignored,
        State::Custom(name) => TaskState::Custom(name.clone()),
    }
}
