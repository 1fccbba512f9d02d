//! `http::Request` in, `wasi:http/outgoing-handler` call, complete response out. Nothing else.

use std::time::Duration;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasi::io::poll::Pollable;
use wasi::io::streams::{OutputStream, StreamError};

use crate::config::TransportLimits;
use crate::error::Error;
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
        // The request has only just been handed over, so its response cannot be there yet:
        // waiting before the first `get` saves a host call that would find nothing.
        started.future.subscribe().block();
        finish(&started, limits)
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
            .map(|s| s.as_ref().err().map(|e| Err(e.clone())))
            .collect();
        loop {
            let pending: Vec<(usize, Pollable)> = started
                .iter()
                .enumerate()
                .filter(|(i, _)| results[*i].is_none())
                .filter_map(|(i, s)| Some((i, s.as_ref().ok()?.future.subscribe())))
                .collect();
            if pending.is_empty() {
                break;
            }
            let pollables: Vec<&Pollable> = pending.iter().map(|(_, p)| p).collect();
            for ready in wasi::io::poll::poll(&pollables) {
                if let Some((index, _)) = pending.get(ready as usize)
                    && let Ok(s) = &started[*index]
                {
                    results[*index] = Some(finish(s, limits));
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
    /// A HEAD response's Content-Length is the object's, not its (empty) body's.
    head: bool,
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
    // `handle` must come before the body is written: a body larger than the host's
    // buffer blocks forever otherwise.
    let future = outgoing_handler::handle(outgoing, Some(request_options(limits)))
        .map_err(|e| http_error(&e))?;
    let written = match outgoing_body {
        None => Ok(()),
        Some(body) => write_body(&body, request.body())
            .and_then(|()| OutgoingBody::finish(body, None).map_err(|e| http_error(&e))),
    };
    let head = request.method() == http::Method::HEAD;
    Ok(Started {
        future,
        written,
        head,
    })
}

fn finish(started: &Started, limits: &TransportLimits) -> Result<Response, Error> {
    // A server may answer (403, 503) before reading the whole body; its answer says more
    // than the broken pipe does.
    match (
        wait(&started.future, limits.max_body_bytes, started.head),
        &started.written,
    ) {
        (Ok(response), _) => Ok(response),
        (Err(_), Err(write_error)) => Err(write_error.clone()),
        (Err(e), Ok(())) => Err(e),
    }
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
    let nanos = |d: Duration| d.as_nanos().try_into().unwrap_or(u64::MAX);
    // A host may not support a given timeout; it then applies its own.
    let _ = options.set_connect_timeout(Some(nanos(limits.connect_timeout)));
    let _ = options.set_first_byte_timeout(Some(nanos(limits.first_byte_timeout)));
    let _ = options.set_between_bytes_timeout(Some(nanos(limits.between_bytes_timeout)));
    options
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| Error::Transport("the request body stream was already taken".into()))?;
    let result = write_all(&stream, bytes);
    drop(stream);
    result
}

fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), Error> {
    while !bytes.is_empty() {
        let permitted = stream.check_write().map_err(stream_error)?;
        if permitted == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        stream.write(&bytes[..n]).map_err(stream_error)?;
        bytes = &bytes[n..];
    }
    stream.blocking_flush().map_err(stream_error)
}

fn wait(future: &FutureIncomingResponse, max_body: u64, head: bool) -> Result<Response, Error> {
    let incoming = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = incoming
        .map_err(|()| Error::Transport("the response was already taken".into()))?
        .map_err(|e| http_error(&e))?;
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
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .filter(|_| !head);
    if let Some(declared) = declared
        && declared > max_body
    {
        return Err(too_large(declared, max_body));
    }
    let body = response
        .consume()
        .map_err(|()| Error::Transport("the response body was already taken".into()))?;
    let bytes = read_body(&body, declared, max_body)?;
    // Dropped rather than finished: S3 sends no trailers, and `finish` would cost two host
    // calls (it and the future-trailers it returns).
    drop(body);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn too_large(bytes: u64, max_body: u64) -> Error {
    Error::ValueTooLarge(format!(
        "the response body is {bytes} bytes or more; max-value-bytes is {max_body}"
    ))
}

fn read_body(body: &IncomingBody, declared: Option<u64>, max_body: u64) -> Result<Vec<u8>, Error> {
    let stream = body
        .stream()
        .map_err(|()| Error::Transport("the response body stream was already taken".into()))?;
    // Content-Length sizes the allocation (already bounded by max_body); the length actually
    // received is checked against it later.
    let mut bytes = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    let result = loop {
        // All that was declared is in: the host has read the body to its end, so asking for
        // the end of the stream as well would only cost another read and wait.
        if declared.is_some_and(|declared| declared > 0 && bytes.len() as u64 == declared) {
            break Ok(bytes);
        }
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) if (bytes.len() + chunk.len()) as u64 > max_body => {
                break Err(too_large((bytes.len() + chunk.len()) as u64, max_body));
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(bytes),
            Err(e) => break Err(stream_error(e)),
        }
    };
    drop(stream);
    result
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Transport("the connection closed early".into()),
        StreamError::LastOperationFailed(io) => match wasi::http::types::http_error_code(&io) {
            Some(code) => http_error(&code),
            // wasmtime reports a stalled body as a stream error without the error code
            // ("connection read timeout"): a timeout all the same.
            None => {
                let message = io.to_debug_string();
                if message.to_ascii_lowercase().contains("timeout") {
                    Error::Timeout(format!("reading the response body: {message}"))
                } else {
                    Error::Transport(message)
                }
            }
        },
    }
}

fn http_error(code: &ErrorCode) -> Error {
    match code {
        ErrorCode::ConnectionTimeout => Error::Timeout("connecting to the server".into()),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            Error::Timeout("waiting for the server's response".into())
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
