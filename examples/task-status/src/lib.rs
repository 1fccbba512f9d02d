//! An edge application on the s3-result-store component: Celery task status over HTTP.
//!
//! A `wasi:http/proxy` component that imports `result-store:s3/tasks`; `scripts/compose` plugs
//! the store component into it with `wac`, giving one component that imports only WASI.
//!
//! | request | answer |
//! |---|---|
//! | `GET /tasks/{id}` | 200, the task's meta as Celery stores it (`PENDING` when unknown, as Celery answers) |
//! | `DELETE /tasks/{id}` | 204: the meta is forgotten (Celery's `forget`) |
//! | `GET /healthz` | 200 when the store's configuration is valid (S3 is not asked) |
//! | any other path; another method | 404; 405 with `Allow`; both with a JSON error |
//!
//! Configuration, from the environment (`wasi:cli/environment`): `S3RS_BUCKET` (required),
//! `S3RS_BASE_PATH`, `S3RS_GLOBAL_KEYPREFIX`; the store itself reads the endpoint, region and
//! credentials from `AWS_ENDPOINT_URL_S3`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...

pub mod app;

pub mod bindings {
    wit_bindgen::generate!({
        // The store's own WIT package (and its WASI deps); the app's world imports from it.
        path: "../../wit",
        inline: "
            package example:task-status;

            world app {
                import result-store:s3/tasks@0.1.0;
            }
        ",
        world: "example:task-status/app",
        generate_all,
    });
}

#[cfg(target_family = "wasm")]
mod http {
    use std::io::Write as _;

    use wasip2::http::types::{
        ErrorCode, Fields, IncomingRequest, Method as WasiMethod, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };

    use crate::app::{self, Method, Response};
    use crate::bindings::result_store::s3::tasks::TaskStore;

    struct App;

    wasip2::http::proxy::export!(App);

    impl wasip2::exports::http::incoming_handler::Guest for App {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let method = match request.method() {
                WasiMethod::Get => Method::Get,
                WasiMethod::Delete => Method::Delete,
                _ => Method::Other,
            };
            let path = request.path_with_query().unwrap_or_default();
            // Opened per request: a platform may instantiate the component per request anyway,
            // and opening only validates the config.
            let open = || {
                let (config, prefix) = app::config_from_env(|name| std::env::var(name).ok());
                TaskStore::open(&config, prefix.as_deref())
            };
            send(app::handle(method, &path, open), out);
        }
    }

    /// Writes the response; a failure here can only be reported to the host, never trap.
    fn send(response: Response, out: ResponseOutparam) {
        let mut headers: Vec<(String, Vec<u8>)> = response
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_bytes()))
            .collect();
        if response.status != 204 {
            headers.push((
                "content-length".to_owned(),
                response.body.len().to_string().into_bytes(),
            ));
        }
        let fields = match Fields::from_list(&headers) {
            Ok(fields) => fields,
            Err(e) => {
                let reason = format!("invalid response header: {e:?}");
                ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(reason))));
                return;
            }
        };
        let outgoing = OutgoingResponse::new(fields);
        let body = match (outgoing.set_status_code(response.status), outgoing.body()) {
            (Ok(()), Ok(body)) => body,
            _ => {
                let reason = "cannot build the response".to_owned();
                ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(reason))));
                return;
            }
        };
        ResponseOutparam::set(out, Ok(outgoing));
        if let Ok(mut stream) = body.write() {
            // The client may be gone; then there is nobody left to tell.
            let _ = stream.write_all(response.body.as_bytes());
            let _ = stream.flush();
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
