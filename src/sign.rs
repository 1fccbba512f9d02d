//! SigV4 with S3's rules. The canonical request and the string to sign are written here; the
//! signing key is `aws-sigv4`'s, the signature an HMAC (`hmac`) keyed with it.
//!
//! Not `aws_sigv4::http_request::sign`: it derives the signing key (four HMACs, 16 SHA-256
//! compressions) again for every request and takes no cached one, which was a quarter of the
//! component's instructions per `get`. The key only changes with the UTC date, so a [`Signer`]
//! keeps it, as an HMAC already keyed (its two padded key blocks hashed: two compressions of
//! the seven a `get` would take otherwise). The tests check every signature against
//! `aws-sigv4`'s own signer.

use std::cell::Cell;
use std::fmt;
use std::time::SystemTime;

use aws_sigv4::sign::v4::generate_signing_key;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderName, HeaderValue, Request, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::calendar::UtcTime;
use crate::config::Credentials;
use crate::error::Error;

/// Everything but RFC 3986's unreserved characters: what query names and values are encoded
/// with in the canonical query. Requests with a query write it this way in the first place.
pub(crate) const QUERY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// SHA-256 of the empty payload (GET, HEAD, DELETE), in hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash S3 takes for a body the signature does not cover.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Headers a proxy may change or drop, left out of the signature (the set SDKs agree on).
const UNSIGNED_HEADERS: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

type HmacSha256 = Hmac<Sha256>;

/// Signs requests for one set of credentials in one region, keeping the day's signing key.
pub struct Signer {
    credentials: Credentials,
    region: String,
    /// An HMAC keyed with the signing key, and the day (since 1970-01-01, UTC) it is for.
    key: Cell<Option<(i64, HmacSha256)>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(credentials: Credentials, region: String) -> Signer {
        Signer {
            credentials,
            region,
            key: Cell::new(None),
        }
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256`, `authorization` (and `x-amz-security-token`)
    /// to `request`, replacing them if an earlier attempt signed it. The `host` value is signed
    /// from the URI authority but not added as a header: WASI HTTP forbids the guest from
    /// setting it and fills it in from the same authority.
    pub fn sign(&self, request: &mut Request<Vec<u8>>, time: SystemTime) -> Result<(), Error> {
        // Written piece by piece rather than with `format!`: its machinery is a sizeable share
        // of a small request's instructions in wasm.
        let utc = UtcTime::new(time);
        let mut date = String::with_capacity(8);
        push_padded(&mut date, utc.year.unsigned_abs(), 4);
        push_padded(&mut date, utc.month.into(), 2);
        push_padded(&mut date, utc.day.into(), 2);
        let mut date_time = String::with_capacity(16);
        date_time.push_str(&date);
        date_time.push('T');
        for part in [utc.hour, utc.minute, utc.second] {
            push_padded(&mut date_time, part.into(), 2);
        }
        date_time.push('Z');
        let payload_hash = payload_hash(request);
        let headers = request.headers_mut();
        headers.insert(X_AMZ_DATE, header_value("x-amz-date", &date_time)?);
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            header_value("x-amz-content-sha256", &payload_hash)?,
        );
        match &self.credentials.session_token {
            Some(token) => {
                let mut value = header_value("x-amz-security-token", token)?;
                value.set_sensitive(true);
                headers.insert(X_AMZ_SECURITY_TOKEN, value);
            }
            None => {
                headers.remove(X_AMZ_SECURITY_TOKEN);
            }
        }

        let (canonical, signed_headers) = canonical_request(request, &payload_hash)?;
        let mut scope = String::with_capacity(date.len() + self.region.len() + 20);
        for part in [&date, "/", &self.region, "/s3/aws4_request"] {
            scope.push_str(part);
        }
        let mut string_to_sign = String::with_capacity(64 + scope.len() + 64);
        for part in ["AWS4-HMAC-SHA256\n", &date_time, "\n", &scope, "\n"] {
            string_to_sign.push_str(part);
        }
        push_hex(&mut string_to_sign, &Sha256::digest(canonical.as_bytes()));
        let mut mac = self.keyed_mac(time, utc.days)?;
        mac.update(string_to_sign.as_bytes());
        let key_id = &self.credentials.access_key_id;
        let mut authorization =
            String::with_capacity(100 + key_id.len() + scope.len() + signed_headers.len());
        for part in [
            "AWS4-HMAC-SHA256 Credential=",
            key_id,
            "/",
            &scope,
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
        ] {
            authorization.push_str(part);
        }
        push_hex(&mut authorization, &mac.finalize().into_bytes());
        // The signature is no secret, but keeping it out of logs costs nothing.
        let mut value = header_value("authorization", &authorization)?;
        value.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
        Ok(())
    }

    /// An HMAC keyed with the signing key for `day`, derived on the day's first request.
    fn keyed_mac(&self, time: SystemTime, day: i64) -> Result<HmacSha256, Error> {
        let mac = match self.key.take() {
            Some((cached_day, mac)) if cached_day == day => mac,
            _ => {
                let key = generate_signing_key(
                    &self.credentials.secret_access_key,
                    time,
                    &self.region,
                    "s3",
                );
                // HMAC takes a key of any length: this cannot fail.
                HmacSha256::new_from_slice(key.as_ref())
                    .map_err(|_| Error::InvalidConfig("cannot key the request signature".into()))?
            }
        };
        self.key.set(Some((day, mac.clone())));
        Ok(mac)
    }
}

/// What `x-amz-content-sha256` says of the body. Over TLS, a body that carries a digest the
/// server checks (a signed `Content-MD5` or flexible checksum, see
/// `integrity::protect_put_body`) is sent as `UNSIGNED-PAYLOAD`, as the AWS SDKs do over HTTPS:
/// TLS already protects it on the way, so hashing it a second time (SHA-256, without the CPU's
/// SHA instructions in wasm: most of a large `set`'s CPU) buys nothing. Over plain HTTP the
/// signature covers the body.
fn payload_hash(request: &Request<Vec<u8>>) -> String {
    let checked = |name| request.headers().contains_key(name);
    if request.body().is_empty() {
        EMPTY_SHA256.to_owned()
    } else if request.uri().scheme_str() == Some("https")
        && (checked("content-md5") || checked(crate::checksum::PUT_ALGORITHM.header()))
    {
        UNSIGNED_PAYLOAD.to_owned()
    } else {
        let mut hash = String::with_capacity(64);
        push_hex(&mut hash, &Sha256::digest(request.body()));
        hash
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::InvalidConfig(format!(
            "the {name} header would not be valid: check that the credentials are printable ASCII"
        ))
    })
}

/// `n` in decimal with at least `width` digits, zero-padded, as `{n:0width$}` writes it.
fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = start.min(digits.len().saturating_sub(width));
    // ASCII digits: always UTF-8.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// Lower-case hex, as SigV4 writes digests. Written as bytes and added as one string: `push`
/// of one `char` at a time costs several times as much in wasm.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        let hex = &mut buf[..chunk.len() * 2];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        // ASCII digits: always UTF-8.
        out.push_str(std::str::from_utf8(hex).unwrap_or_default());
    }
}

/// The canonical request, and the signed header names joined by `;`.
fn canonical_request(
    request: &Request<Vec<u8>>,
    payload_hash: &str,
) -> Result<(String, String), Error> {
    let uri = request.uri();
    let mut headers: Vec<(&str, String)> = Vec::with_capacity(request.headers().keys_len() + 1);
    for name in request.headers().keys() {
        if UNSIGNED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let mut joined = String::new();
        for (index, value) in request.headers().get_all(name).iter().enumerate() {
            let value = value.to_str().map_err(|_| {
                Error::InvalidConfig(format!("the {name} header is not visible ASCII"))
            })?;
            if index > 0 {
                joined.push(',');
            }
            push_trimmed(&mut joined, value);
        }
        headers.push((name.as_str(), joined));
    }
    if !request.headers().contains_key(http::header::HOST) {
        headers.push(("host", host(uri)?));
    }
    headers.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut canonical = String::with_capacity(256);
    canonical.push_str(request.method().as_str());
    canonical.push('\n');
    canonical.push_str(uri.path());
    canonical.push('\n');
    canonical.push_str(&canonical_query(uri.query().unwrap_or_default()));
    canonical.push('\n');
    let mut signed = String::with_capacity(96);
    for (name, value) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
        if !signed.is_empty() {
            signed.push(';');
        }
        signed.push_str(name);
    }
    canonical.push('\n');
    canonical.push_str(&signed);
    canonical.push('\n');
    canonical.push_str(payload_hash);
    Ok((canonical, signed))
}

/// The authority as the `Host` header carries it: without the scheme's default port.
fn host(uri: &Uri) -> Result<String, Error> {
    let missing = || Error::InvalidConfig("cannot sign a request without a host".into());
    let authority = uri.authority().ok_or_else(missing)?;
    let default_port = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    if authority.port_u16().is_some() && authority.port_u16() == default_port {
        Ok(authority.host().to_owned())
    } else {
        Ok(authority.as_str().to_owned())
    }
}

/// Appends `value` without leading and trailing spaces and with runs of spaces made one
/// (spaces only: S3 keeps tabs and other whitespace).
fn push_trimmed(out: &mut String, value: &str) {
    let value = value.trim_matches(' ');
    // The usual case, taken whole rather than a `char` at a time.
    if !value.contains("  ") {
        out.push_str(value);
        return;
    }
    let mut previous_space = false;
    for c in value.chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
}

/// Pairs decoded as a form would be (`+` is a space), encoded again over [`QUERY_ENCODE_SET`],
/// sorted, and joined; a name without `=` gets an empty value.
fn canonical_query(query: &str) -> String {
    let reencode = |part: &str| {
        let spaced = part.replace('+', " ");
        let decoded = percent_decode_str(&spaced).decode_utf8_lossy();
        utf8_percent_encode(&decoded, QUERY_ENCODE_SET).to_string()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencode(name), reencode(value))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len());
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&name);
        out.push('=');
        out.push_str(&value);
    }
    out
}

/// Signs once with a fresh [`Signer`], for tests of requests built elsewhere.
#[cfg(test)]
pub(crate) fn sign(
    request: &mut Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), Error> {
    Signer::new(credentials.clone(), region.to_owned()).sign(request, time)
}

#[cfg(test)]
mod tests;
