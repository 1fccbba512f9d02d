//! End-to-end integrity of values: what is stored is what was sent, and what `get` returns is
//! what was stored, whatever a proxy or a broken connection did in between.

use http::{HeaderMap, HeaderValue, Request};
use md5::{Digest, Md5};

use crate::error::Error;

/// Makes the server refuse a PUT body damaged in transit rather than store it. Over plain
/// HTTP the signature already covers the body (`x-amz-content-sha256` is its SHA-256, which
/// the server checks), so nothing is added: a Content-MD5 as well would hash every value twice
/// in wasm, where neither digest has the CPU's instructions. Over TLS the body goes as
/// `UNSIGNED-PAYLOAD` with a (signed) `Content-MD5` instead (see `sign::payload_hash`): one
/// digest either way, and the cheaper one where the channel is protected anyway.
pub fn protect_put_body(request: &mut Request<Vec<u8>>) {
    if request.uri().scheme_str() == Some("https") {
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

/// For an object stored by a single PUT without KMS or customer-key encryption, S3's ETag is
/// the hex MD5 of its bytes: a body that does not match was corrupted on the way.
/// Multipart ETags (`...-N`) and encrypted objects carry no such promise and are not checked.
pub fn check_etag(headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let Some(etag) = headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
    let is_md5 = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
    let encrypted = headers
        .get("x-amz-server-side-encryption")
        .is_some_and(|v| v.as_bytes().starts_with(b"aws:kms"))
        || headers.contains_key("x-amz-server-side-encryption-customer-algorithm");
    if !is_md5 || encrypted {
        return Ok(());
    }
    let actual = Md5::digest(body);
    let matches = actual
        .iter()
        .zip(etag.as_bytes().chunks(2))
        .all(|(byte, hex)| {
            std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                == Some(*byte)
        });
    if matches {
        Ok(())
    } else {
        Err(Error::Transport(
            "the value received does not match its ETag (MD5): it was corrupted in transit".into(),
        ))
    }
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

    #[test]
    fn a_put_body_gets_a_content_md5_over_tls_only() {
        let mut r = Request::put("https://h/b/k")
            .body(b"hello".to_vec())
            .unwrap();
        protect_put_body(&mut r);
        assert_eq!(r.headers()["content-md5"], "XUFAKrxLKna5cZ2REBfFkg==");
        let mut r = Request::put("http://h/b/k")
            .body(b"hello".to_vec())
            .unwrap();
        protect_put_body(&mut r);
        assert!(!r.headers().contains_key("content-md5"));
    }

    #[test]
    fn matching_etag_passes_and_a_flipped_byte_fails() {
        let h = headers(&[("etag", "\"5d41402abc4b2a76b9719d911017c592\"")]);
        assert_eq!(check_etag(&h, b"hello"), Ok(()));
        assert!(
            matches!(check_etag(&h, b"hellp"), Err(Error::Transport(m)) if m.contains("corrupted"))
        );
        let upper = headers(&[("etag", "\"5D41402ABC4B2A76B9719D911017C592\"")]);
        assert_eq!(check_etag(&upper, b"hello"), Ok(()));
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
            assert_eq!(check_etag(&h, b"anything"), Ok(()), "{h:?}");
        }
    }
}
