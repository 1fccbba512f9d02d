//! Conditional writes: a PUT that lands only if the object is still the version that was read
//! (`If-Match: <etag>`) or still absent (`If-None-Match: *`). S3 has neither increment nor
//! compare-and-swap; these give both, with a read-modify-write loop.
//!
//! Two hazards are handled here rather than left to callers:
//! - Some servers (Garage 2.5) ignore the headers and overwrite: a 200 proves nothing. Support
//!   is established by a probe before the first conditional write of a store.
//! - A write whose response was lost is retried, and the retry fails its precondition because
//!   the first attempt landed. Every conditional write carries a random write id in its object
//!   metadata, so a re-read tells "someone else wrote" from "my earlier attempt wrote".

use http::{HeaderValue, Request, header};

use crate::error::Error;
use crate::request::Operation;
use crate::response::{self, Response};
use crate::store::{Store, System, Transport};

/// Object metadata holding the id of the write that stored the object.
pub const WRITE_ID_HEADER: &str = "x-amz-meta-s3rs-write-id";

/// How many times in a row a read-modify-write may lose to other writers before giving up.
pub const MAX_CONFLICTS: u32 = 16;

/// An object as read, with what identifies its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub etag: String,
    /// Set when the object was stored by a conditional write of this component.
    pub write_id: Option<String>,
}

/// What a conditional write requires of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// The key holds no object.
    Absent,
    /// The object is still the version with this ETag.
    Matches(String),
}

impl Precondition {
    /// The precondition that holds exactly while the object is as `read`.
    pub fn of(read: Option<&Versioned>) -> Precondition {
        match read {
            Some(v) => Precondition::Matches(v.etag.clone()),
            None => Precondition::Absent,
        }
    }
}

/// What became of a conditional write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutIf {
    Written,
    /// The precondition failed: another write came first.
    Conflict,
}

/// Adds the precondition's header and the write id to a PUT.
pub fn add_precondition(
    request: &mut Request<Vec<u8>>,
    precondition: &Precondition,
    write_id: &str,
) -> Result<(), Error> {
    let invalid = |what: &str| Error::InvalidValue(format!("cannot send {what} as a header"));
    let (name, value) = match precondition {
        Precondition::Absent => (header::IF_NONE_MATCH, "*".to_owned()),
        Precondition::Matches(etag) => (header::IF_MATCH, etag.clone()),
    };
    let value = HeaderValue::from_str(&value).map_err(|_| invalid("the ETag"))?;
    let id = HeaderValue::from_str(write_id).map_err(|_| invalid("the write id"))?;
    let headers = request.headers_mut();
    headers.insert(name, value);
    headers.insert(WRITE_ID_HEADER, id);
    Ok(())
}

/// A GET's answer with the version it read; `None` for a missing object.
pub fn parse_versioned(bucket: &str, response: Response) -> Result<Option<Versioned>, Error> {
    let header_text = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header_text(header::ETAG.as_str());
    let write_id = header_text(WRITE_ID_HEADER);
    let Some(value) = response::outcome(Operation::Get, bucket, response)? else {
        return Ok(None);
    };
    let etag = etag.ok_or_else(|| {
        Error::Unsupported(
            "the server sends objects without an ETag, so they cannot be updated conditionally"
                .into(),
        )
    })?;
    Ok(Some(Versioned {
        value,
        etag,
        write_id,
    }))
}

/// A conditional PUT's answer. 412 is a failed precondition; 409 is S3's answer to a
/// conditional write racing another on the same key, which loses the same way.
pub fn parse_put_if(bucket: &str, response: Response) -> Result<PutIf, Error> {
    match response.status {
        200..=299 => Ok(PutIf::Written),
        412 => Ok(PutIf::Conflict),
        409 if response::parse_error(&response).code == "ConditionalRequestConflict" => {
            Ok(PutIf::Conflict)
        }
        _ => Err(response::error_for(bucket, &response)),
    }
}

/// How a probe's write went, as evidence of support.
fn supports(step: &str, answer: PutIf, expected: PutIf) -> Result<(), Error> {
    if answer == expected {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "the server ignores {step} on PUT (conditional writes): it overwrote an object it \
         should have refused to, so atomic updates cannot be made safe on it"
    )))
}

impl<T: Transport, S: System> Store<T, S> {
    /// Reads `key` with the version it was read at.
    pub fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, Error> {
        let mut request = self.prepare(Operation::Get, key, Vec::new())?;
        let bucket = &self.config().bucket;
        self.run(&mut request, |r| parse_versioned(bucket, r))
    }

    /// Whether `key` holds an object, by HEAD. A missing bucket also answers 404 without a
    /// body, so it reads as a missing key.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        let mut request = self.prepare(Operation::Head, key, Vec::new())?;
        let bucket = &self.config().bucket;
        let found = self.run(&mut request, |r| {
            response::outcome(Operation::Head, bucket, r)
        })?;
        Ok(found.is_some())
    }

    /// Writes `value` under `key` only if `precondition` holds.
    pub fn put_if(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: &Precondition,
        write_id: &str,
    ) -> Result<PutIf, Error> {
        let mut request = self.prepare(Operation::Put, key, value)?;
        add_precondition(&mut request, precondition, write_id)?;
        let bucket = &self.config().bucket;
        self.run(&mut request, |r| parse_put_if(bucket, r))
    }

    /// A fresh id for one conditional write.
    pub fn new_write_id(&self) -> String {
        let random = self.random();
        let more = self.random().rotate_left(32);
        format!("{random:016x}{more:016x}")
    }

    /// Establishes that the server honours both preconditions, with a throwaway object under
    /// the store's prefix (deleted afterwards): it must refuse a second create with
    /// `If-None-Match: *` and an update with a wrong `If-Match`.
    pub fn probe_conditional_writes(&self) -> Result<(), Error> {
        let key = format!(".s3rs-conditional-write-probe-{}", self.new_write_id());
        let id = self.new_write_id();
        let result = (|| {
            let created = self.put_if(&key, b"1".to_vec(), &Precondition::Absent, &id)?;
            supports("If-None-Match", created, PutIf::Written)?;
            let again = self.put_if(&key, b"2".to_vec(), &Precondition::Absent, &id)?;
            supports("If-None-Match: *", again, PutIf::Conflict)?;
            let wrong = Precondition::Matches(format!("\"{}\"", "0".repeat(32)));
            let updated = self.put_if(&key, b"3".to_vec(), &wrong, &id)?;
            supports("If-Match", updated, PutIf::Conflict)
        })();
        // The probe object is clutter either way; failing to remove it changes no answer.
        let _ = self.delete(&key);
        result
    }

    /// Changes the value under `key` atomically: read, decide from the value read, write if
    /// the object is still as read, and decide again from a fresh read when another writer
    /// came first. `decide` answers [`Update::Write`] with the bytes to store and what to
    /// return once they are stored, or [`Update::Keep`] to leave the object as it is.
    /// Conditional-write support must have been established (see
    /// [`Store::probe_conditional_writes`]) where a silent overwrite would lose an update.
    pub fn update<A>(
        &self,
        key: &str,
        decide: impl Fn(Option<&[u8]>) -> Result<Update<A>, Error>,
    ) -> Result<A, Error> {
        let write_id = self.new_write_id();
        let mut current = self.get_versioned(key)?;
        for conflict in 0..MAX_CONFLICTS {
            let (bytes, answer) = match decide(current.as_ref().map(|v| v.value.as_slice()))? {
                Update::Keep(answer) => return Ok(answer),
                Update::Write(bytes, answer) => (bytes, answer),
            };
            let precondition = Precondition::of(current.as_ref());
            match self.put_if(key, bytes, &precondition, &write_id)? {
                PutIf::Written => return Ok(answer),
                PutIf::Conflict => {
                    current = self.get_versioned(key)?;
                    if current.as_ref().and_then(|r| r.write_id.as_deref()) == Some(&write_id) {
                        // An attempt whose answer was lost had landed; the retry then failed
                        // its precondition against our own write.
                        return Ok(answer);
                    }
                    let wait = crate::retry::backoff(conflict, self.random());
                    self.sleep(wait);
                }
            }
        }
        Err(too_many_conflicts(key))
    }
}

/// What [`Store::update`] is to do with the value it read, and what it then answers.
pub enum Update<A> {
    /// Store these bytes; the update then answers `A`.
    Write(Vec<u8>, A),
    /// Leave the object as it is and answer `A`.
    Keep(A),
}

fn too_many_conflicts(key: &str) -> Error {
    Error::S3(crate::error::S3ErrorInfo {
        status: 412,
        code: "PreconditionFailed".into(),
        message: format!(
            "{key:?} changed under each of {MAX_CONFLICTS} attempts to update it; other writers \
             keep winning, try again later"
        ),
        request_id: None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
