//! `http::Request` in, `wasi:http/outgoing-handler` call, complete response out, never past
//! the deadlines of `crate::deadline` whatever the host does with the timeouts it is given.

use std::time::Duration;

use wasi::clocks::monotonic_clock::{self, subscribe_instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::config::TransportLimits;
use crate::deadline::{Deadline, Phase, RequestClock};
use crate::error::Error;
use crate::integrity::BodyCheck;
use crate::response::Response;
use crate::store::Transport;

/// Largest read asked of the response stream at once.
const READ_CHUNK: u64 = 1 << 20;

pub struct WasiHttp;

impl Transport for WasiHttp {
    fn send(
        &self,
        request: &http::Request<Vec<u8>>,
        limits: &TransportLimits,
    ) -> Result<Response, Error> {
        let started = start(request, limits)?;
        if let Err(e @ Error::Timeout(_)) = &started.written {
            return Err(e.clone());
        }
        let deadline = started.head_deadline();
        let ready = started.future.subscribe();
        let timer = subscribe_instant(nanos(deadline.at));
        loop {
            // The request has only just been handed over, so its response cannot be there
            // yet: waiting before the first `get` saves a host call that would find nothing.
            poll(&[&ready, &timer]);
            if let Some(response) = take_response(&started, limits) {
                return response;
            }
            if now() >= deadline.at {
                return Err(started.head_expired(&deadline));
            }
        }
    }

    /// Every request is handed to the host before any response is awaited, so they travel
    /// concurrently; responses are then read as they become ready.
    fn send_all(
        &self,
        requests: &[http::Request<Vec<u8>>],
        limits: &TransportLimits,
    ) -> Vec<Result<Response, Error>> {
        let started: Vec<Result<Started, Error>> =
            requests.iter().map(|r| start(r, limits)).collect();
        let mut results: Vec<Option<Result<Response, Error>>> = started
            .iter()
            .map(|s| match s {
                Err(e) => Some(Err(e.clone())),
                Ok(s) => match &s.written {
                    Err(e @ Error::Timeout(_)) => Some(Err(e.clone())),
                    _ => None,
                },
            })
            .collect();
        loop {
            let now = now();
            let mut earliest = Duration::MAX;
            let mut pending: Vec<(usize, Pollable)> = Vec::new();
            for (index, started) in started.iter().enumerate() {
                let Ok(s) = started else { continue };
                if results[index].is_some() {
                    continue;
                }
                let deadline = s.head_deadline();
                if now >= deadline.at {
                    // Reading another response's body may have taken us past this one's
                    // deadline while its answer was already in.
                    results[index] = Some(
                        take_response(s, limits).unwrap_or_else(|| Err(s.head_expired(&deadline))),
                    );
                    continue;
                }
                earliest = earliest.min(deadline.at);
                pending.push((index, s.future.subscribe()));
            }
            if pending.is_empty() {
                break;
            }
            let timer = subscribe_instant(nanos(earliest));
            let mut pollables: Vec<&Pollable> = pending.iter().map(|(_, p)| p).collect();
            pollables.push(&timer);
            for ready in poll(&pollables) {
                if let Some((index, _)) = pending.get(ready as usize)
                    && let Ok(s) = &started[*index]
                {
                    results[*index] = take_response(s, limits);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Transport("no response".into()))))
            .collect()
    }
}

/// A request handed to the host: its response to come, and how writing its body went.
struct Started {
    future: FutureIncomingResponse,
    written: Result<(), Error>,
    method: http::Method,
    clock: RequestClock,
    /// When the whole body had been handed over (the start, for a request without one).
    sent_at: Duration,
}

impl Started {
    fn head_deadline(&self) -> Deadline {
        self.clock.deadline(Phase::AwaitingHead, self.sent_at)
    }

    /// No answer by `deadline`: a failed write says more, if there was one.
    fn head_expired(&self, deadline: &Deadline) -> Error {
        match &self.written {
            Err(e) => e.clone(),
            Ok(()) => self.clock.expired(deadline, 0),
        }
    }
}

fn start(request: &http::Request<Vec<u8>>, limits: &TransportLimits) -> Result<Started, Error> {
    let outgoing = outgoing_request(request)?;
    // A request whose body is never taken goes out without one: for an empty body (GET, HEAD,
    // DELETE) that saves two host calls and the host's body channel.
    let outgoing_body = if request.body().is_empty() {
        None
    } else {
        Some(
            outgoing
                .body()
                .map_err(|()| Error::Transport("the request body was already taken".into()))?,
        )
    };
    let clock = RequestClock::start(now(), limits);
    // `handle` must come before the body is written: a body larger than the host's
    // buffer blocks forever otherwise.
    let future = outgoing_handler::handle(outgoing, Some(request_options(limits)))
        .map_err(|e| http_error(&e, limits))?;
    let (written, sent_at) = match outgoing_body {
        None => (Ok(()), clock.started()),
        Some(body) => {
            let written = write_body(&body, request.body(), &clock).and_then(|()| {
                OutgoingBody::finish(body, None).map_err(|e| http_error(&e, limits))
            });
            (written, now())
        }
    };
    Ok(Started {
        future,
        written,
        method: request.method().clone(),
        clock,
        sent_at,
    })
}

/// The response, if the host has it (or has failed it).
fn take_response(started: &Started, limits: &TransportLimits) -> Option<Result<Response, Error>> {
    let incoming = started.future.get()?;
    // A server may answer (403, 503) before reading the whole body; its answer says more
    // than the broken pipe does.
    Some(
        match (read_response(incoming, started, limits), &started.written) {
            (Ok(response), _) => Ok(response),
            (Err(_), Err(write_error)) => Err(write_error.clone()),
            (Err(e), Ok(())) => Err(e),
        },
    )
}

fn outgoing_request(parts: &http::Request<Vec<u8>>) -> Result<OutgoingRequest, Error> {
    // One host call for all the headers, rather than one per header: each crossing of the
    // component boundary costs more than copying a few short strings.
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| {
        let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
        Error::Transport(format!(
            "the host refused the request headers ({}): {e:?}",
            names.join(", ")
        ))
    })?;
    let request = OutgoingRequest::new(fields);
    let method = match *parts.method() {
        // A new request is a GET already: no call needed.
        http::Method::GET => None,
        http::Method::PUT => Some(Method::Put),
        http::Method::DELETE => Some(Method::Delete),
        http::Method::HEAD => Some(Method::Head),
        http::Method::POST => Some(Method::Post),
        ref other => Some(Method::Other(other.as_str().to_owned())),
    };
    let uri = parts.uri();
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let refused = |what: &str| Error::Transport(format!("the host refused the request {what}"));
    if let Some(method) = method {
        request
            .set_method(&method)
            .map_err(|()| refused("method"))?;
    }
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(uri.authority().map(|a| a.as_str()))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(uri.path_and_query().map(|p| p.as_str()))
        .map_err(|()| refused("path"))?;
    Ok(request)
}

fn request_options(limits: &TransportLimits) -> RequestOptions {
    let options = RequestOptions::new();
    // A host may not support a given timeout, or apply it its own way; the transport's own
    // deadlines hold either way.
    let _ = options.set_connect_timeout(Some(nanos(limits.connect_timeout)));
    let _ = options.set_first_byte_timeout(Some(nanos(limits.first_byte_timeout)));
    let _ = options.set_between_bytes_timeout(Some(nanos(limits.between_bytes_timeout)));
    options
}

fn write_body(body: &OutgoingBody, bytes: &[u8], clock: &RequestClock) -> Result<(), Error> {
    let stream = body
        .write()
        .map_err(|()| Error::Transport("the request body stream was already taken".into()))?;
    let result = write_all(&stream, bytes, clock);
    drop(stream);
    result
}

fn write_all(stream: &OutputStream, mut bytes: &[u8], clock: &RequestClock) -> Result<(), Error> {
    let mut waiter = Waiter::new(clock, Phase::SendingBody, Some(clock.started()));
    let ready = stream.subscribe();
    let mut sent = 0u64;
    let failed = |e, waiter: &Waiter, sent| waiter.failure(e, sent);
    while !bytes.is_empty() {
        let permitted = stream.check_write().map_err(|e| failed(e, &waiter, sent))?;
        if permitted == 0 {
            waiter.wait(&ready, sent)?;
            continue;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        stream
            .write(&bytes[..n])
            .map_err(|e| failed(e, &waiter, sent))?;
        bytes = &bytes[n..];
        sent += n as u64;
        waiter.moved();
    }
    // The flush is done once the stream takes writes again.
    stream.flush().map_err(|e| failed(e, &waiter, sent))?;
    while stream.check_write().map_err(|e| failed(e, &waiter, sent))? == 0 {
        waiter.wait(&ready, sent)?;
    }
    Ok(())
}

fn read_response(
    incoming: Result<Result<IncomingResponse, ErrorCode>, ()>,
    started: &Started,
    limits: &TransportLimits,
) -> Result<Response, Error> {
    let response = incoming
        .map_err(|()| Error::Transport("the response was already taken".into()))?
        .map_err(|e| match e {
            ErrorCode::ConnectionTimeout => started.clock.host_connect_timeout(now()),
            e => http_error(&e, limits),
        })?;
    let status = response.status();
    let mut headers = http::HeaderMap::new();
    for (name, value) in response.headers().entries() {
        // A header that `http` cannot represent is of no use to the core; skip it.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    let max_body = limits.max_body_bytes;
    // A HEAD response's Content-Length is the object's, not its (empty) body's.
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .filter(|_| started.method != http::Method::HEAD);
    if let Some(declared) = declared
        && declared > max_body
    {
        return Err(too_large(declared, max_body));
    }
    let body = response
        .consume()
        .map_err(|()| Error::Transport("the response body was already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Transport("the response body stream was already taken".into()))?;
    let mut check = BodyCheck::for_response(&started.method, status, &headers);
    let bytes = read_body(&stream, declared, max_body, &started.clock, check.as_mut());
    drop(stream);
    // Dropped rather than finished: S3 sends no trailers, and `finish` would cost two host
    // calls (it and the future-trailers it returns).
    drop(body);
    Ok(Response {
        status,
        headers,
        body: bytes?,
        checked: check.map(BodyCheck::finish),
    })
}

fn too_large(bytes: u64, max_body: u64) -> Error {
    Error::ValueTooLarge(format!(
        "the response body is {bytes} bytes or more; max-value-bytes is {max_body}"
    ))
}

/// Reads the whole body, feeding `check` as it comes: its digest is then computed while the
/// rest of the body is still on its way.
fn read_body(
    stream: &InputStream,
    declared: Option<u64>,
    max_body: u64,
    clock: &RequestClock,
    mut check: Option<&mut BodyCheck>,
) -> Result<Vec<u8>, Error> {
    // Content-Length sizes the allocation (already bounded by max_body); the length actually
    // received is checked against it later.
    let mut bytes = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    // The head has just arrived: the body's time runs from the first wait.
    let mut waiter = Waiter::new(clock, Phase::ReadingBody, None);
    let mut ready: Option<Pollable> = None;
    loop {
        let received = bytes.len() as u64;
        // All that was declared is in: the host has read the body to its end, so asking for
        // the end of the stream as well would only cost another read and wait.
        if declared.is_some_and(|declared| declared > 0 && received == declared) {
            return Ok(bytes);
        }
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                waiter.wait(ready.get_or_insert_with(|| stream.subscribe()), received)?;
            }
            Ok(chunk) if received + chunk.len() as u64 > max_body => {
                return Err(too_large(received + chunk.len() as u64, max_body));
            }
            Ok(chunk) => {
                if let Some(check) = check.as_deref_mut() {
                    check.update(&chunk);
                }
                if bytes.is_empty() && chunk.len() as u64 == declared.unwrap_or(0) {
                    // The whole body in one read: keep its buffer rather than copy it.
                    bytes = chunk;
                } else {
                    bytes.extend_from_slice(&chunk);
                }
                waiter.moved();
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(e) => return Err(waiter.failure(e, received)),
        }
    }
}

/// Waits for a stream, never past its phase's deadline, whatever the host does with timeouts.
struct Waiter<'a> {
    clock: &'a RequestClock,
    phase: Phase,
    /// When the stream last moved; `None` once it has moved since the last wait, which then
    /// reads the clock (one reading per wait rather than one per chunk).
    progress: Option<Duration>,
    timer: Option<(Duration, Pollable)>,
}

impl<'a> Waiter<'a> {
    fn new(clock: &'a RequestClock, phase: Phase, progress: Option<Duration>) -> Self {
        Waiter {
            clock,
            phase,
            progress,
            timer: None,
        }
    }

    fn moved(&mut self) {
        self.progress = None;
    }

    /// Returns when `ready` is, or the deadline has come (the next wait then fails).
    fn wait(&mut self, ready: &Pollable, bytes: u64) -> Result<(), Error> {
        let now = now();
        let since = *self.progress.get_or_insert(now);
        let deadline = self.clock.deadline(self.phase, since);
        if now >= deadline.at {
            return Err(self.clock.expired(&deadline, bytes));
        }
        let timer = match &self.timer {
            Some((at, timer)) if *at == deadline.at => timer,
            _ => {
                let timer = subscribe_instant(nanos(deadline.at));
                &self.timer.insert((deadline.at, timer)).1
            }
        };
        poll(&[ready, timer]);
        Ok(())
    }

    fn failure(&self, e: StreamError, bytes: u64) -> Error {
        match e {
            StreamError::Closed => Error::Transport(match self.phase {
                Phase::SendingBody => format!(
                    "the connection closed while sending the request body ({bytes} bytes sent)"
                ),
                _ => "the connection closed early".into(),
            }),
            // Only the host's words, not `wasi:http/types#http-error-code`: jco's shims throw
            // from that function (a trap in the guest) for errors they did not make.
            StreamError::LastOperationFailed(io) => {
                let now = now();
                let progress = self.progress.unwrap_or(now);
                self.clock
                    .body_failure(self.phase, &io.to_debug_string(), now, progress, bytes)
            }
        }
    }
}

fn now() -> Duration {
    Duration::from_nanos(monotonic_clock::now())
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().try_into().unwrap_or(u64::MAX)
}

fn http_error(code: &ErrorCode, limits: &TransportLimits) -> Error {
    let ms = crate::deadline::millis;
    match code {
        ErrorCode::ConnectionTimeout => Error::Timeout(format!(
            "connecting to the server: not within connect-timeout-ms ({})",
            ms(limits.connect_timeout)
        )),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            Error::Timeout(format!(
                "waiting for the response headers: none within first-byte-timeout-ms ({})",
                ms(limits.first_byte_timeout)
            ))
        }
        ErrorCode::ConnectionWriteTimeout => Error::Timeout("sending the request".into()),
        ErrorCode::DnsTimeout => Error::Timeout("resolving the server's name".into()),
        ErrorCode::ConnectionRefused => Error::Transport("connection refused".into()),
        ErrorCode::ConnectionTerminated => {
            Error::Transport("the connection was closed or reset".into())
        }
        ErrorCode::DnsError(e) => Error::Transport(format!(
            "cannot resolve the server's name: {}",
            e.rcode.as_deref().unwrap_or("DNS error")
        )),
        ErrorCode::TlsCertificateError => {
            Error::Transport("the server's TLS certificate was not accepted".into())
        }
        ErrorCode::HttpResponseIncomplete => {
            Error::Transport("the response ended before it was complete".into())
        }
        other => Error::Transport(format!("{other:?}")),
    }
}
