//! Presigned GET URLs signed with SigV4 directly. The SDK's presigner runs its whole request
//! pipeline (endpoint rules, interceptors, serialisation) for every URL, about 0.1 ms of CPU
//! each, and a page of 20 hangouts presigns 100 of them. The URL's base (scheme, host, path
//! or virtual-hosted style, bucket) is still the SDK's: it is taken once from a URL the SDK
//! presigned, so endpoint resolution stays in one place. A test compares both, byte for byte.
//!
//! Downloads are signed at the start of a signing window (`domain::download`), so a URL only
//! depends on its key within a window: the signatures of the current window are kept, and a
//! page read again costs lookups instead of HMACs. Only the signature is stored per key; the
//! rest of the URL is the same for every key of the window and is checked to be.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use aws_sigv4::{
    http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    },
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;

/// Why a URL could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("cannot presign: {0}")]
pub struct PresignError(String);

/// Signatures kept per window, at most: with 64-byte signatures and keys of about 80 bytes,
/// some 4 MB. Past it, URLs are signed each time until the window ends.
const MAX_KEPT_SIGNATURES: usize = 20_000;

/// Where the signature starts in a presigned URL's query; it is the last parameter.
const SIGNATURE_PARAMETER: &str = "X-Amz-Signature=";

/// Signs GET URLs for objects of one bucket.
#[derive(Clone, Debug)]
pub struct GetPresigner {
    /// Everything before the object key: `http://host:9000/bucket/` or `https://bucket.host/`.
    base: String,
    host: String,
    region: String,
    identity: Identity,
    kept: Arc<Mutex<Option<KeptWindow>>>,
}

/// The signatures of one signing window.
#[derive(Debug)]
struct KeptWindow {
    start: SystemTime,
    expires_in: Duration,
    /// What follows the key in every URL of this window, up to and with `X-Amz-Signature=`.
    query: String,
    signatures: HashMap<Box<str>, Box<str>>,
}

impl KeptWindow {
    fn is(&self, start: SystemTime, expires_in: Duration) -> bool {
        self.start == start && self.expires_in == expires_in
    }
}

/// The key the SDK presigns to learn the URL base; it needs no escaping.
pub const PROBE_KEY: &str = "probe";

impl GetPresigner {
    /// A presigner from `probe_url`, a URL the SDK presigned for a GET of [`PROBE_KEY`].
    ///
    /// # Errors
    /// When the probe URL does not have the expected shape.
    pub fn from_probe(
        probe_url: &str,
        region: &str,
        identity: Identity,
    ) -> Result<Self, PresignError> {
        let path = probe_url.split('?').next().unwrap_or_default();
        let base = path
            .strip_suffix(PROBE_KEY)
            .ok_or_else(|| PresignError(format!("unexpected probe URL {path}")))?;
        let host = base
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .filter(|host| !host.is_empty())
            .ok_or_else(|| PresignError(format!("no host in {base}")))?;
        Ok(Self {
            base: base.to_owned(),
            host: host.to_owned(),
            region: region.to_owned(),
            identity,
            kept: Arc::default(),
        })
    }

    /// As [`GetPresigner::presign`], from the signatures kept for the window `start` begins.
    ///
    /// # Errors
    /// When signing fails.
    pub fn presign_in_window(
        &self,
        key: &str,
        start: SystemTime,
        expires_in: Duration,
    ) -> Result<String, PresignError> {
        {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(window) = kept.as_ref().filter(|window| window.is(start, expires_in))
                && let Some(signature) = window.signatures.get(key)
            {
                return Ok(self.url(key, &window.query, signature));
            }
        }
        let url = self.presign(key, start, expires_in)?;
        self.keep(key, start, expires_in, &url);
        Ok(url)
    }

    fn url(&self, key: &str, query: &str, signature: &str) -> String {
        let mut url =
            String::with_capacity(self.base.len() + key.len() + query.len() + signature.len());
        url.push_str(&self.base);
        url.push_str(key);
        url.push_str(query);
        url.push_str(signature);
        url
    }

    /// Keeps the signature of `url` when the rest of it is what the window's URLs share.
    fn keep(&self, key: &str, start: SystemTime, expires_in: Duration, url: &str) {
        let Some((query, signature)) = url
            .strip_prefix(self.base.as_str())
            .and_then(|rest| rest.strip_prefix(key))
            .and_then(|rest| rest.rsplit_once(SIGNATURE_PARAMETER))
            .filter(|(_, signature)| !signature.contains('&'))
        else {
            return;
        };
        let query = format!("{query}{SIGNATURE_PARAMETER}");
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        // A slow reader still in the previous window does not evict the current one.
        if kept.as_ref().is_none_or(|window| window.start < start) {
            *kept = Some(KeptWindow {
                start,
                expires_in,
                query: query.clone(),
                signatures: HashMap::new(),
            });
        }
        if let Some(window) = kept.as_mut()
            && window.is(start, expires_in)
            && window.query == query
            && window.signatures.len() < MAX_KEPT_SIGNATURES
        {
            window.signatures.insert(key.into(), signature.into());
        }
    }

    /// The presigned GET URL of `key` (ids and `/`, `.`, `-` only), valid from `start` for
    /// `expires_in`.
    ///
    /// # Errors
    /// When signing fails.
    pub fn presign(
        &self,
        key: &str,
        start: SystemTime,
        expires_in: Duration,
    ) -> Result<String, PresignError> {
        let failed = |error: &dyn std::fmt::Display| PresignError(error.to_string());
        let mut url = format!("{}{key}?x-id=GetObject", self.base);
        let mut settings = SigningSettings::default();
        // What S3 expects (as the SDK sets it for S3): no double encoding, no normalisation.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(start)
            .settings(settings)
            .build()
            .map_err(|error| failed(&error))?
            .into();
        let request = SignableRequest::new(
            "GET",
            Cow::Borrowed(url.as_str()),
            std::iter::once(("host", self.host.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|error| failed(&error))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|error| failed(&error))?
            .into_parts();
        let (_headers, query) = instructions.into_parts();
        for (name, value) in query {
            let _ = write!(url, "&{name}=");
            encode_into(&mut url, &value);
        }
        Ok(url)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as the SDK's query writer.
fn encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_as_the_sdk_does() {
        let mut out = String::new();
        encode_into(&mut out, "key/20261125/us-east-1/s3/aws4_request a+b~");
        assert_eq!(
            out,
            "key%2F20261125%2Fus-east-1%2Fs3%2Faws4_request%20a%2Bb~"
        );
    }

    #[test]
    fn probe_urls_give_base_and_host() {
        let identity = aws_sdk_s3::config::Credentials::new("a", "b", None, None, "test").into();
        let presigner = GetPresigner::from_probe(
            "http://127.0.0.1:9000/bucket/probe?x-id=GetObject&X-Amz-Signature=0",
            "us-east-1",
            identity,
        )
        .unwrap();
        assert_eq!(presigner.base, "http://127.0.0.1:9000/bucket/");
        assert_eq!(presigner.host, "127.0.0.1:9000");
    }

    #[test]
    fn kept_signatures_give_the_urls_signing_gives() {
        let identity = aws_sdk_s3::config::Credentials::new("a", "b", None, None, "test").into();
        let presigner = GetPresigner::from_probe(
            "https://bucket.s3.eu-west-1.amazonaws.com/probe?x-id=GetObject",
            "eu-west-1",
            identity,
        )
        .unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let later = start + Duration::from_secs(225);
        let expires_in = Duration::from_secs(1125);
        for (key, start) in [
            ("users/1/a.jpg", start),
            ("users/1/b.jpg", start),
            ("users/1/a.jpg", start),
            ("users/1/a.jpg", later),
            ("users/1/b.jpg", start),
            ("users/1/b.jpg", later),
        ] {
            let fresh = presigner.presign(key, start, expires_in).unwrap();
            let windowed = presigner.presign_in_window(key, start, expires_in).unwrap();
            assert_eq!(windowed, fresh, "{key} at {start:?}");
            assert_eq!(
                presigner.presign_in_window(key, start, expires_in).unwrap(),
                fresh
            );
        }
        let kept = presigner.kept.lock().unwrap();
        let window = kept.as_ref().unwrap();
        assert_eq!(window.start, later, "the newer window is kept");
        assert_eq!(window.signatures.len(), 2);
    }
}
