//! Object keys: Celery's base-path concatenation, S3's limits, and the URI encoding that makes
//! every key exactly one object in the configured bucket.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;

/// S3's limit on a key, counted in UTF-8 bytes, base path included.
pub const MAX_KEY_BYTES: usize = 1024;

/// Everything but the unreserved characters of RFC 3986 and '/': S3's canonical URI rule. With
/// '?', '#', '%' and '.' segments all escaped or left verbatim, no key can reach the query, the
/// fragment, another bucket or another host.
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A full object key (base path + key) that S3 will accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// `base_path + key` by plain concatenation, as Celery's `S3Backend` builds it.
    pub fn new(base_path: &str, key: &str) -> Result<ObjectKey, Error> {
        if key.is_empty() {
            return Err(Error::InvalidKey("the key is empty".into()));
        }
        if let Some(c) = key.chars().find(|c| c.is_control()) {
            // S3 returns listings as XML 1.0, which cannot carry most control characters, and
            // they are nearly always a caller's bug (a stray newline).
            return Err(Error::InvalidKey(format!(
                "the key contains the control character U+{:04X}",
                u32::from(c)
            )));
        }
        let full_len = base_path.len() + key.len();
        if full_len > MAX_KEY_BYTES {
            return Err(Error::InvalidKey(format!(
                "the key is {full_len} bytes with the base path; S3 allows at most {MAX_KEY_BYTES}"
            )));
        }
        Ok(ObjectKey([base_path, key].concat()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as it appears in a request path: each byte outside the unreserved set
    /// percent-encoded once, '/' kept, nothing normalised ('//' and '..' stay as they are).
    pub fn encoded(&self) -> String {
        // Through `Cow`, not `to_string`: no formatting machinery for every request.
        Cow::from(utf8_percent_encode(&self.0, KEY_ENCODE_SET)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenates_like_celery() {
        let k = ObjectKey::new("results/", "celery-task-meta-x").unwrap();
        assert_eq!(k.as_str(), "results/celery-task-meta-x");
        let k = ObjectKey::new("/prefix", "celery-task-meta-x").unwrap();
        assert_eq!(k.as_str(), "/prefixcelery-task-meta-x");
        let k = ObjectKey::new("", "k").unwrap();
        assert_eq!(k.as_str(), "k");
    }

    #[test]
    fn empty_key_is_invalid_even_with_base_path() {
        assert!(
            matches!(ObjectKey::new("p/", ""), Err(Error::InvalidKey(m)) if m.contains("empty"))
        );
    }

    #[test]
    fn length_limit_counts_bytes_and_base_path() {
        assert!(ObjectKey::new("", &"a".repeat(1024)).is_ok());
        assert!(ObjectKey::new("", &"a".repeat(1025)).is_err());
        assert!(ObjectKey::new("pp", &"a".repeat(1022)).is_ok());
        assert!(matches!(
            ObjectKey::new("pp", &"a".repeat(1023)),
            Err(Error::InvalidKey(m)) if m.contains("1025 bytes")
        ));
        // 'é' is two bytes: 512 of them fill the limit exactly.
        assert!(ObjectKey::new("", &"é".repeat(512)).is_ok());
        assert!(ObjectKey::new("", &"é".repeat(513)).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        for key in ["a\nb", "\0", "tab\there", "del\u{7f}", "c1\u{85}"] {
            assert!(
                matches!(ObjectKey::new("", key), Err(Error::InvalidKey(m)) if m.contains("U+")),
                "{key:?}"
            );
        }
    }

    #[test]
    fn encoding_follows_s3_canonical_uri_rules() {
        let enc = |k: &str| ObjectKey::new("", k).unwrap().encoded();
        assert_eq!(enc("a-b_c.d~e/f"), "a-b_c.d~e/f");
        assert_eq!(enc("a b+c%d?e#f"), "a%20b%2Bc%25d%3Fe%23f");
        assert_eq!(enc("//evil.com/x"), "//evil.com/x");
        assert_eq!(enc("a/../../b"), "a/../../b");
        assert_eq!(enc("é€"), "%C3%A9%E2%82%AC");
        assert_eq!(
            enc("a:b@c=d&e;f,g*h'i(j)k!l$"),
            "a%3Ab%40c%3Dd%26e%3Bf%2Cg%2Ah%27i%28j%29k%21l%24"
        );
    }
}
