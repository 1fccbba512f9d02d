//! Conditional writes against an in-memory S3 model that honours (or, like Garage, ignores)
//! preconditions and can lose a response after applying the write. Real servers: `tests/`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::config::{Config, ConfigInput, TransportLimits};

#[derive(Clone)]
struct Object {
    value: Vec<u8>,
    etag: String,
    write_id: Option<String>,
}

#[derive(Default)]
pub(crate) struct Model {
    objects: RefCell<BTreeMap<String, Object>>,
    versions: Cell<u32>,
    /// Like Garage 2.5: preconditions are accepted and ignored.
    ignores_preconditions: bool,
    /// The next PUT lands, but its answer is lost (a reset after the server wrote).
    lose_next_put_answer: Cell<bool>,
    /// Before each of the next PUTs, another client writes this value first.
    interleaved_writes: RefCell<Vec<Vec<u8>>>,
    pub(crate) puts: Cell<u32>,
    /// Most keys in one listing page (S3: 1000).
    pub(crate) page_size: Cell<usize>,
}

impl Model {
    fn write(&self, path: &str, value: Vec<u8>, write_id: Option<String>) {
        self.versions.set(self.versions.get() + 1);
        let etag = format!("\"v{}\"", self.versions.get());
        let object = Object {
            value,
            etag,
            write_id,
        };
        self.objects.borrow_mut().insert(path.to_owned(), object);
    }

    /// A server like Garage 2.5, which accepts preconditions and ignores them.
    pub(crate) fn ignoring_preconditions() -> Model {
        Model {
            ignores_preconditions: true,
            ..Model::default()
        }
    }

    /// Another client will write `value` just before the next PUT arrives.
    pub(crate) fn interleave(&self, value: &[u8]) {
        self.interleaved_writes
            .borrow_mut()
            .insert(0, value.to_vec());
    }

    pub(crate) fn put(&self, path: &str, value: &[u8]) {
        self.write(path, value.to_vec(), None);
    }

    /// ListObjectsV2 with `prefix`, `max-keys` and a continuation token (here: the last key
    /// of the previous page).
    fn list(&self, query: &str) -> Response {
        let param = |name: &str| {
            query.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned()
                })
            })
        };
        let prefix = format!("/kvs/{}", param("prefix").unwrap_or_default());
        let max: usize = param("max-keys")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1000);
        let after = param("continuation-token").map(|t| format!("/kvs/{t}"));
        let page_size = match self.page_size.get() {
            0 => 1000,
            n => n,
        };
        let objects = self.objects.borrow();
        let mut keys = objects
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .filter(|k| after.as_ref().is_none_or(|a| *k > a));
        let page: Vec<&String> = keys.by_ref().take(max.min(page_size)).collect();
        let truncated = keys.next().is_some();
        let mut xml = String::from("<ListBucketResult>");
        for key in &page {
            let key = key.strip_prefix("/kvs/").unwrap();
            xml.push_str(&format!(
                "<Contents><Key>{key}</Key><LastModified>2026-11-25T12:00:00.000Z</LastModified><Size>1</Size></Contents>"
            ));
        }
        xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        if truncated {
            let last = page.last().unwrap().strip_prefix("/kvs/").unwrap();
            xml.push_str(&format!(
                "<NextContinuationToken>{last}</NextContinuationToken>"
            ));
        }
        xml.push_str("</ListBucketResult>");
        let mut response = answer(200, "");
        response.body = xml.into_bytes();
        response
    }

    pub(crate) fn value(&self, path: &str) -> Option<Vec<u8>> {
        self.objects.borrow().get(path).map(|o| o.value.clone())
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.objects.borrow().keys().cloned().collect()
    }
}

pub(crate) fn answer(status: u16, code: &str) -> Response {
    let body = if code.is_empty() {
        Vec::new()
    } else {
        format!("<Error><Code>{code}</Code><Message>m</Message></Error>").into_bytes()
    };
    Response {
        status,
        headers: HeaderMap::new(),
        body,
        checked: None,
    }
}

impl Transport for &Model {
    fn send(&self, r: &http::Request<Vec<u8>>, _: &TransportLimits) -> Result<Response, Error> {
        let path = r.uri().path().to_owned();
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok());
        match *r.method() {
            Method::GET if r.uri().query().is_some_and(|q| q.contains("list-type=2")) => {
                Ok(self.list(r.uri().query().unwrap_or_default()))
            }
            Method::GET | Method::HEAD => {
                let objects = self.objects.borrow();
                let Some(object) = objects.get(&path) else {
                    return Ok(answer(404, "NoSuchKey"));
                };
                let mut response = answer(200, "");
                let headers = &mut response.headers;
                headers.insert("etag", HeaderValue::from_str(&object.etag).unwrap());
                if let Some(id) = &object.write_id {
                    headers.insert(WRITE_ID_HEADER, HeaderValue::from_str(id).unwrap());
                }
                if r.method() == Method::GET {
                    response.body = object.value.clone();
                }
                Ok(response)
            }
            Method::PUT => {
                self.puts.set(self.puts.get() + 1);
                if let Some(value) = self.interleaved_writes.borrow_mut().pop() {
                    self.write(&path, value, None);
                }
                let current = self.objects.borrow().get(&path).map(|o| o.etag.clone());
                if !self.ignores_preconditions {
                    let failed = match (header("if-none-match"), header("if-match")) {
                        (Some("*"), _) => current.is_some(),
                        (_, Some(etag)) => current.as_deref() != Some(etag),
                        _ => false,
                    };
                    if failed {
                        return Ok(answer(412, "PreconditionFailed"));
                    }
                }
                self.write(
                    &path,
                    r.body().clone(),
                    header(WRITE_ID_HEADER).map(Into::into),
                );
                if self.lose_next_put_answer.replace(false) {
                    return Err(Error::Transport(
                        "the connection was closed or reset".into(),
                    ));
                }
                Ok(answer(200, ""))
            }
            Method::DELETE => {
                self.objects.borrow_mut().remove(&path);
                Ok(answer(204, ""))
            }
            _ => Ok(answer(405, "")),
        }
    }
}

pub(crate) struct Quick {
    random: Cell<u64>,
}

impl Default for Quick {
    fn default() -> Self {
        Quick {
            random: Cell::new(1),
        }
    }
}

impl System for &Quick {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_608_000)
    }
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
    fn sleep(&self, _: Duration) {}
    fn random(&self) -> u64 {
        // Distinct ids for distinct writes.
        let next = self
            .random
            .get()
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1);
        self.random.set(next);
        next
    }
}

pub(crate) fn store<'a>(model: &'a Model, system: &'a Quick) -> Store<&'a Model, &'a Quick> {
    let input = ConfigInput {
        endpoint_url: Some("http://127.0.0.1:9000".into()),
        bucket_name: Some("kvs".into()),
        access_key_id: Some("AKID".into()),
        secret_access_key: Some("SECRET".into()),
        base_path: Some("app/".into()),
        ..ConfigInput::default()
    };
    let config = Config::resolve(&input, std::iter::empty::<(String, String)>()).unwrap();
    Store::new(config, model, system)
}

/// Appends `suffix`; the update answers the value written.
fn append(suffix: &'static [u8]) -> impl Fn(Option<&[u8]>) -> Result<Update<Vec<u8>>, Error> {
    move |current| {
        let new = [current.unwrap_or_default(), suffix].concat();
        Ok(Update::Write(new.clone(), new))
    }
}

#[test]
fn the_probe_accepts_a_server_that_honours_both_preconditions_and_cleans_up() {
    let (model, system) = (Model::default(), Quick::default());
    store(&model, &system).probe_conditional_writes().unwrap();
    assert_eq!(model.puts.get(), 3);
    assert!(
        model.keys().is_empty(),
        "probe object left: {:?}",
        model.keys()
    );
}

#[test]
fn the_probe_refuses_a_server_that_ignores_preconditions() {
    let model = Model::ignoring_preconditions();
    let system = Quick::default();
    let err = store(&model, &system)
        .probe_conditional_writes()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("If-None-Match")),
        "{err}"
    );
    assert!(model.keys().is_empty());
}

#[test]
fn an_update_creates_a_missing_key_then_builds_on_it() {
    let (model, system) = (Model::default(), Quick::default());
    let s = store(&model, &system);
    assert_eq!(s.update("k", append(b"a")).unwrap(), b"a");
    assert_eq!(s.update("k", append(b"b")).unwrap(), b"ab");
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"ab");
}

#[test]
fn an_update_that_loses_to_another_writer_starts_again_from_its_value() {
    let (model, system) = (Model::default(), Quick::default());
    let s = store(&model, &system);
    s.update("k", append(b"a")).unwrap();
    // Someone else appends 'x' just before each of our next two writes.
    *model.interleaved_writes.borrow_mut() = vec![b"axx".to_vec(), b"ax".to_vec()];
    assert_eq!(s.update("k", append(b"b")).unwrap(), b"axxb");
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"axxb");
}

#[test]
fn a_write_whose_answer_was_lost_is_not_applied_twice() {
    let (model, system) = (Model::default(), Quick::default());
    let s = store(&model, &system);
    s.update("k", append(b"a")).unwrap();
    model.lose_next_put_answer.set(true);
    // The first attempt lands, its answer is lost, the retry fails its precondition against
    // that very write: the write id shows it was ours.
    assert_eq!(s.update("k", append(b"b")).unwrap(), b"ab");
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"ab");
}

#[test]
fn endless_conflicts_end_in_a_clear_error() {
    let (model, system) = (Model::default(), Quick::default());
    let s = store(&model, &system);
    s.update("k", append(b"a")).unwrap();
    *model.interleaved_writes.borrow_mut() = (0..MAX_CONFLICTS).map(|_| b"z".to_vec()).collect();
    let err = s.update("k", append(b"b")).unwrap_err();
    assert!(
        matches!(&err, Error::S3(i) if i.code == "PreconditionFailed" && i.message.contains("other writers")),
        "{err}"
    );
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"z");
}

#[test]
fn a_failed_update_function_writes_nothing() {
    let (model, system) = (Model::default(), Quick::default());
    let s = store(&model, &system);
    let err = s
        .update::<()>("k", |_| Err(Error::InvalidValue("no".into())))
        .unwrap_err();
    assert_eq!(err, Error::InvalidValue("no".into()));
    assert_eq!(model.puts.get(), 0);
}

#[test]
fn puts_carry_the_precondition_and_the_write_id() {
    let mut request = http::Request::new(Vec::new());
    add_precondition(&mut request, &Precondition::Absent, "id1").unwrap();
    assert_eq!(request.headers()["if-none-match"], "*");
    assert!(request.headers().get("if-match").is_none());
    assert_eq!(request.headers()[WRITE_ID_HEADER], "id1");
    let mut request = http::Request::new(Vec::new());
    add_precondition(&mut request, &Precondition::Matches("\"e\"".into()), "id2").unwrap();
    assert_eq!(request.headers()["if-match"], "\"e\"");
    let bad = Precondition::Matches("a\nb".into());
    assert!(add_precondition(&mut http::Request::new(Vec::new()), &bad, "id").is_err());
}

#[test]
fn conflict_answers_are_told_from_errors() {
    assert_eq!(parse_put_if("b", answer(200, "")), Ok(PutIf::Written));
    assert_eq!(
        parse_put_if("b", answer(412, "PreconditionFailed")),
        Ok(PutIf::Conflict)
    );
    assert_eq!(
        parse_put_if("b", answer(409, "ConditionalRequestConflict")),
        Ok(PutIf::Conflict)
    );
    assert!(matches!(
        parse_put_if("b", answer(409, "OperationAborted")),
        Err(Error::S3(_))
    ));
    assert!(matches!(
        parse_put_if("b", answer(404, "NoSuchBucket")),
        Err(Error::NoSuchBucket(_))
    ));
    assert!(matches!(
        parse_put_if("b", answer(403, "AccessDenied")),
        Err(Error::AccessDenied(_))
    ));
}

#[test]
fn a_versioned_read_needs_an_etag() {
    let mut found = answer(200, "");
    found.body = b"v".to_vec();
    let err = parse_versioned("b", found).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("ETag")),
        "{err}"
    );
    assert_eq!(parse_versioned("b", answer(404, "NoSuchKey")), Ok(None));
}
