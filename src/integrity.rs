//! End-to-end integrity of values: what is stored is what was sent, and what `get` returns is
//! what was stored, whatever a proxy or a broken connection did in between.

use std::cell::Cell;

use http::{HeaderMap, HeaderValue, Request};
use md5::{Digest, Md5};

use crate::checksum::{self, PUT_ALGORITHM};
use crate::error::Error;
use crate::response::Response;

/// What a server has shown of flexible checksums, learned from its answers to the store's
/// own PUTs: whether it takes a `x-amz-checksum-*` header (checks it, stores it, and says so
/// by sending it back) is not assumed, since servers that do not know the header ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChecksumSupport {
    /// Nothing answered yet: the checksum goes with the older protection, not instead of it.
    #[default]
    Unknown,
    /// A PUT's answer carried the checksum sent.
    Taken,
    /// A successful PUT's answer did not: the server ignores the header.
    Ignored,
}

/// A store's [`ChecksumSupport`], as its answers come in.
#[derive(Debug, Default)]
pub struct ChecksumKnowledge(Cell<ChecksumSupport>);

impl ChecksumKnowledge {
    pub fn get(&self) -> ChecksumSupport {
        self.0.get()
    }

    /// Learns from the answer to `request` (any request: only successful PUTs that carried a
    /// checksum teach anything).
    pub fn learn(&self, request: &Request<Vec<u8>>, response: &Response) {
        if request.method() != http::Method::PUT || !(200..300).contains(&response.status) {
            return;
        }
        let header = PUT_ALGORITHM.header();
        let Some(sent) = request.headers().get(header) else {
            return;
        };
        let answered = response.headers.get(header);
        self.0.set(if answered == Some(sent) {
            ChecksumSupport::Taken
        } else {
            ChecksumSupport::Ignored
        });
    }
}

/// Makes the server refuse a PUT body damaged in transit rather than store it, and gives it a
/// checksum to keep for later reads ([`check_body`]).
///
/// - The CRC32C (`x-amz-checksum-crc32c`), unless the server is known to ignore it: a server
///   that takes it refuses a body that does not match, and returns it with the object.
/// - Over plain HTTP the signature covers the body (`x-amz-content-sha256` is its SHA-256,
///   which the server checks), so nothing else is needed.
/// - Over TLS the body goes as `UNSIGNED-PAYLOAD` (see `sign::payload_hash`) with the CRC
///   alone once the server has shown it takes it, and with a (signed) `Content-MD5` as well
///   until then: one cheap digest where the channel is protected anyway, never none.
pub fn protect_put_body(request: &mut Request<Vec<u8>>, support: ChecksumSupport) {
    if support != ChecksumSupport::Ignored
        && let Ok(value) = HeaderValue::from_str(&PUT_ALGORITHM.header_value(request.body()))
    {
        let headers = request.headers_mut();
        headers.insert(PUT_ALGORITHM.header(), value);
        // S3 needs only the checksum; some servers (moto) look here for which one it is.
        headers.insert(
            "x-amz-sdk-checksum-algorithm",
            HeaderValue::from_static(PUT_ALGORITHM.name()),
        );
    }
    if request.uri().scheme_str() == Some("https") && support != ChecksumSupport::Taken {
        add_content_md5(request);
    }
}

/// `Content-MD5` makes the server refuse (400 BadDigest) a body damaged in transit, rather
/// than act on it. Every S3 implementation checks it; DeleteObjects requires it.
pub fn add_content_md5(request: &mut Request<Vec<u8>>) {
    let digest = aws_smithy_types::base64::encode(Md5::digest(request.body()));
    if let Ok(value) = HeaderValue::from_str(&digest) {
        request.headers_mut().insert("content-md5", value);
    }
}

/// Checks a GET's body against what the server says the object is: its stored whole-object
/// CRC when the answer carries one, else its ETag when that is the object's MD5.
pub fn check_body(headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let mut check = BodyCheck::for_head(headers);
    check.update(body);
    check.finish()
}

/// [`check_body`] fed as the body arrives, so that the digest is computed while the rest is
/// still on its way rather than after.
pub struct BodyCheck(Check);

enum Check {
    Nothing,
    Crc {
        running: checksum::Running,
        algorithm: checksum::Algorithm,
        expected: String,
    },
    Md5 {
        hasher: Md5,
        expected: [u8; 16],
    },
}

impl BodyCheck {
    /// The check for the body of an answer to `method`, if it has one: only a successful GET
    /// returns the object (a PUT's ETag describes what was sent, not its empty body).
    pub fn for_response(
        method: &http::Method,
        status: u16,
        headers: &HeaderMap,
    ) -> Option<BodyCheck> {
        (method == http::Method::GET && (200..300).contains(&status))
            .then(|| BodyCheck::for_head(headers))
    }

    fn for_head(headers: &HeaderMap) -> BodyCheck {
        if let Some((algorithm, expected)) = checksum::stored(headers) {
            return BodyCheck(Check::Crc {
                running: algorithm.start(),
                algorithm,
                expected: expected.to_owned(),
            });
        }
        match etag_md5(headers) {
            Some(expected) => BodyCheck(Check::Md5 {
                hasher: Md5::new(),
                expected,
            }),
            None => BodyCheck(Check::Nothing),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Check::Nothing => {}
            Check::Crc { running, .. } => running.update(bytes),
            Check::Md5 { hasher, .. } => hasher.update(bytes),
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        let corrupted = |what: String| {
            Err(Error::Transport(format!(
                "the value received does not match its {what}: it was corrupted in transit"
            )))
        };
        match self.0 {
            Check::Nothing => Ok(()),
            Check::Crc {
                running,
                algorithm,
                expected,
            } => {
                if running.header_value() == expected {
                    Ok(())
                } else {
                    corrupted(format!("stored {} checksum", algorithm.name()))
                }
            }
            Check::Md5 { hasher, expected } => {
                if hasher.finalize()[..] == expected {
                    Ok(())
                } else {
                    corrupted("ETag (MD5)".into())
                }
            }
        }
    }
}

/// For an object stored by a single PUT without KMS or customer-key encryption, S3's ETag is
/// the hex MD5 of its bytes. Multipart ETags (`...-N`) and encrypted objects carry no such
/// promise and are not checked.
fn etag_md5(headers: &HeaderMap) -> Option<[u8; 16]> {
    let etag = headers.get(http::header::ETAG)?.to_str().ok()?;
    let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
    let encrypted = headers
        .get("x-amz-server-side-encryption")
        .is_some_and(|v| v.as_bytes().starts_with(b"aws:kms"))
        || headers.contains_key("x-amz-server-side-encryption-customer-algorithm");
    if etag.len() != 32 || !etag.bytes().all(|b| b.is_ascii_hexdigit()) || encrypted {
        return None;
    }
    let mut md5 = [0u8; 16];
    for (byte, hex) in md5.iter_mut().zip(etag.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    }
    Some(md5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn content_md5_is_the_base64_digest() {
        let mut r = Request::put("http://h/b/k")
            .body(b"hello".to_vec())
            .unwrap();
        add_content_md5(&mut r);
        assert_eq!(r.headers()["content-md5"], "XUFAKrxLKna5cZ2REBfFkg==");
        let mut r = Request::put("http://h/b/k").body(Vec::new()).unwrap();
        add_content_md5(&mut r);
        assert_eq!(r.headers()["content-md5"], "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    fn protected(url: &str, support: ChecksumSupport) -> HeaderMap {
        let mut r = Request::put(url).body(b"hello".to_vec()).unwrap();
        protect_put_body(&mut r, support);
        r.headers().clone()
    }

    #[test]
    fn a_put_body_gets_a_content_md5_over_tls_until_the_server_takes_its_crc() {
        use ChecksumSupport::*;
        let crc = "x-amz-checksum-crc32c";
        let md5 = "content-md5";
        // CRC32C("hello") = 0x9a71bb4c.
        for (url, support, crc_sent, md5_sent) in [
            ("https://h/b/k", Unknown, true, true),
            ("https://h/b/k", Taken, true, false),
            ("https://h/b/k", Ignored, false, true),
            ("http://h/b/k", Unknown, true, false),
            ("http://h/b/k", Taken, true, false),
            ("http://h/b/k", Ignored, false, false),
        ] {
            let h = protected(url, support);
            assert_eq!(h.contains_key(crc), crc_sent, "{url} {support:?}");
            assert_eq!(h.contains_key(md5), md5_sent, "{url} {support:?}");
            if crc_sent {
                assert_eq!(h[crc], "mnG7TA==");
                assert_eq!(h["x-amz-sdk-checksum-algorithm"], "CRC32C");
            }
            if md5_sent {
                assert_eq!(h[md5], "XUFAKrxLKna5cZ2REBfFkg==");
            }
        }
    }

    #[test]
    fn support_is_learned_from_successful_puts_that_sent_a_checksum() {
        let put = |crc: bool| {
            let mut r = Request::put("http://h/b/k")
                .body(b"hello".to_vec())
                .unwrap();
            protect_put_body(
                &mut r,
                if crc {
                    ChecksumSupport::Unknown
                } else {
                    ChecksumSupport::Ignored
                },
            );
            r
        };
        let answer = |status, echo: Option<&str>| Response {
            status,
            headers: echo.map_or_else(HeaderMap::new, |v| headers(&[("x-amz-checksum-crc32c", v)])),
            body: Vec::new(),
            checked: None,
        };
        let k = ChecksumKnowledge::default();
        // Failures and requests without a checksum teach nothing.
        k.learn(&put(true), &answer(500, None));
        k.learn(&put(false), &answer(200, None));
        let get = Request::get("http://h/b/k").body(Vec::new()).unwrap();
        k.learn(&get, &answer(200, Some("mnG7TA==")));
        assert_eq!(k.get(), ChecksumSupport::Unknown);
        k.learn(&put(true), &answer(200, Some("mnG7TA==")));
        assert_eq!(k.get(), ChecksumSupport::Taken);
        // An answer with another value did not take ours.
        k.learn(&put(true), &answer(200, Some("AAAAAA==")));
        assert_eq!(k.get(), ChecksumSupport::Ignored);
        k.learn(&put(true), &answer(200, Some("mnG7TA==")));
        assert_eq!(k.get(), ChecksumSupport::Taken);
        k.learn(&put(true), &answer(204, None));
        assert_eq!(k.get(), ChecksumSupport::Ignored);
    }

    #[test]
    fn only_a_successful_gets_body_is_checked_and_pieces_check_as_the_whole() {
        let h = headers(&[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")]);
        assert!(BodyCheck::for_response(&http::Method::PUT, 200, &h).is_none());
        assert!(BodyCheck::for_response(&http::Method::HEAD, 200, &h).is_none());
        assert!(BodyCheck::for_response(&http::Method::GET, 404, &h).is_none());
        for h in [h, headers(&[("x-amz-checksum-crc32c", "mnG7TA==")])] {
            let mut check = BodyCheck::for_response(&http::Method::GET, 200, &h).unwrap();
            check.update(b"he");
            check.update(b"llo");
            assert_eq!(check.finish(), Ok(()));
            let mut check = BodyCheck::for_response(&http::Method::GET, 200, &h).unwrap();
            check.update(b"hel");
            check.update(b"lp");
            assert!(check.finish().is_err());
        }
    }

    #[test]
    fn a_stored_checksum_is_checked_before_the_etag() {
        // A correct CRC decides even where the ETag is another object's MD5.
        let h = headers(&[
            ("x-amz-checksum-crc32c", "mnG7TA=="),
            ("etag", "\"00000000000000000000000000000000\""),
        ]);
        assert_eq!(check_body(&h, b"hello"), Ok(()));
        assert!(
            matches!(check_body(&h, b"hellp"), Err(Error::Transport(m)) if m.contains("stored CRC32C checksum")),
        );
        // Without one, the ETag.
        let h = headers(&[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")]);
        assert_eq!(check_body(&h, b"hello"), Ok(()));
        assert!(matches!(check_body(&h, b"hellp"), Err(Error::Transport(m)) if m.contains("MD5")));
    }

    #[test]
    fn matching_etag_passes_and_a_flipped_byte_fails() {
        let h = headers(&[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")]);
        assert_eq!(check_body(&h, b"hello"), Ok(()));
        assert!(
            matches!(check_body(&h, b"hellp"), Err(Error::Transport(m)) if m.contains("corrupted"))
        );
        let upper = headers(&[("etag", "\"5D41402ABC4B2A76B9719D911017C592\"")]);
        assert_eq!(check_body(&upper, b"hello"), Ok(()));
    }

    #[test]
    fn etags_that_are_not_an_md5_are_not_checked() {
        for h in [
            headers(&[]),
            headers(&[("etag", "\"5d41402abc4b2a76b9719d911017c592-2\"")]),
            headers(&[("etag", "\"not-an-md5\"")]),
            headers(&[
                ("etag", "\"00000000000000000000000000000000\""),
                ("x-amz-server-side-encryption", "aws:kms"),
            ]),
            headers(&[
                ("etag", "\"00000000000000000000000000000000\""),
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ]),
        ] {
            assert_eq!(check_body(&h, b"anything"), Ok(()), "{h:?}");
        }
    }
}
