//! SigV4 signing with S3's rules, through `aws-sigv4`.

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode, sign as sigv4_sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue, Request};

use crate::config::Credentials;
use crate::error::Error;

/// S3 signs the path exactly as sent (no double encoding, no `..` resolution) and needs the
/// payload hash in `x-amz-content-sha256`.
fn s3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.signature_location = SignatureLocation::Headers;
    settings.session_token_mode = SessionTokenMode::Include;
    settings
}

/// SHA-256 of the empty payload (GET, HEAD, DELETE), in hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload for signing; an empty one with its well-known hash, which saves hashing it.
fn payload(body: &[u8]) -> SignableBody<'_> {
    if body.is_empty() {
        SignableBody::Precomputed(EMPTY_SHA256.to_owned())
    } else {
        SignableBody::Bytes(body)
    }
}

/// Adds `x-amz-date`, `x-amz-content-sha256`, `authorization` (and `x-amz-security-token`)
/// to `request`. The `host` value is signed from the URI authority but not added as a header:
/// WASI HTTP forbids the guest from setting it and fills it in from the same authority.
pub fn sign(
    request: &mut Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), Error> {
    // `Identity::new` rather than `Credentials`' `Into<Identity>`: the conversion also files
    // the credentials' feature and account-id properties in a config bag, which signing never
    // reads, and which cost the component its type-erased map code.
    let identity = Identity::new(
        AwsCredentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "s3-result-store",
        ),
        None,
    );
    let settings = s3_settings();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Error::InvalidConfig(format!("cannot sign: {e}")))?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
        .collect::<Result<Vec<_>, http::header::ToStrError>>()
        .map_err(|_| Error::InvalidConfig("a request header is not visible ASCII".into()))?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        payload(request.body()),
    )
    .map_err(|e| Error::InvalidConfig(format!("cannot sign: {e}")))?;
    let (instructions, _signature) = sigv4_sign(signable, &params)
        .map_err(|e| Error::InvalidConfig(format!("cannot sign: {e}")))?
        .into_parts();
    // Applied by hand: the crate's own helper panics on a value that is not a valid header.
    let (new_headers, _query) = instructions.into_parts();
    for header in new_headers {
        let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
            Error::InvalidConfig(format!(
                "the {} header would not be valid: check that the credentials are printable ASCII",
                header.name()
            ))
        })?;
        // The signature is no secret, but keeping it out of logs costs nothing.
        value.set_sensitive(header.sensitive() || header.name() == "authorization");
        request
            .headers_mut()
            .insert(HeaderName::from_static(header.name()), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn example_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(Into::into),
        }
    }

    /// 2013-05-24T00:00:00Z, the date of the worked examples in the S3 SigV4 documentation.
    fn example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    #[test]
    fn matches_the_documented_get_object_example() {
        let mut request = Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("range", "bytes=0-9")
            .body(Vec::new())
            .unwrap();
        sign(
            &mut request,
            &example_credentials(None),
            "us-east-1",
            example_time(),
        )
        .unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(request.headers()["x-amz-date"], "20130524T000000Z");
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            request.headers().get("host").is_none(),
            "host must be left to the transport"
        );
    }

    #[test]
    fn payload_hash_covers_the_body() {
        let mut request = Request::put("http://127.0.0.1:9000/b/k")
            .body(b"Welcome to Amazon S3.".to_vec())
            .unwrap();
        sign(
            &mut request,
            &example_credentials(None),
            "us-east-1",
            example_time(),
        )
        .unwrap();
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
    }

    #[test]
    fn path_is_signed_as_given_without_normalisation() {
        let sign_path = |path: &str| {
            let mut r = Request::get(format!("http://h:1{path}"))
                .body(Vec::new())
                .unwrap();
            sign(
                &mut r,
                &example_credentials(None),
                "us-east-1",
                example_time(),
            )
            .unwrap();
            r.headers()["authorization"].to_str().unwrap().to_owned()
        };
        // Distinct keys must give distinct signatures: nothing collapses '//' or '..'.
        let a = sign_path("/b/a/../c");
        let b = sign_path("/b/c");
        let c = sign_path("/b//c");
        assert_ne!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn session_token_is_sent_and_sensitive() {
        let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
        sign(
            &mut request,
            &example_credentials(Some("TOKEN")),
            "us-east-1",
            example_time(),
        )
        .unwrap();
        let token = &request.headers()["x-amz-security-token"];
        assert_eq!(token, "TOKEN");
        assert!(token.is_sensitive());
        assert!(request.headers()["authorization"].is_sensitive());
    }

    #[test]
    fn unprintable_credentials_are_an_error_not_a_panic() {
        let mut creds = example_credentials(Some("bad\ntoken"));
        let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
        let err = sign(&mut request, &creds, "us-east-1", example_time()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)));
        creds.session_token = None;
        creds.access_key_id = "bad\nid".into();
        assert!(sign(&mut request, &creds, "us-east-1", example_time()).is_err());
    }
}
