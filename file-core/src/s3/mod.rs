//! The S3 adapter: implements the domain's [`ObjectStorage`] port with aws-sdk-s3, against AWS
//! or any S3-compatible endpoint (the embedded server included).
//!
//! Two clients share credentials and region: one talks to S3 from this service, the other only
//! presigns, with the endpoint clients reach S3 by (which may differ, for example behind a
//! proxy or in compose). Presigning is local: no request leaves the process.

use std::{
    error::Error as StdError,
    future::Future,
    time::{Duration, Instant, SystemTime},
};

use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, http::HttpResponse, retry::RetryConfig, timeout::TimeoutConfig,
    },
    error::SdkError,
    presigning::{PresignedRequest as SdkPresignedRequest, PresigningConfig},
    types::{
        BucketLocationConstraint, CorsConfiguration, CorsRule, CreateBucketConfiguration,
        ServerSideEncryption,
    },
};
use aws_smithy_http_client::tls;
use tracing::Instrument as _;

use crate::domain::{
    download::DownloadSigning,
    objects::{
        ListedObject, ObjectError, ObjectPage, ObjectStorage, PresignedRequest, UploadBinding,
    },
    time::Timestamp,
};
use crate::metrics::S3Metrics;

mod presign;

use presign::{GetPresigner, PROBE_KEY};

/// How long browsers may cache the bucket's answer to a CORS preflight (an hour, as the
/// embedded server answers).
const CORS_MAX_AGE_SECONDS: i32 = 3600;

/// How to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    /// Endpoint this service uses; `None` for AWS's own endpoint of the region.
    pub endpoint: Option<String>,
    /// Endpoint put in presigned URLs; `None` for the same as `endpoint`.
    pub public_endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-hosted (`bucket.endpoint/key`).
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// What every object written and every upload presigned asks S3 to encrypt with.
    pub encryption: Encryption,
}

/// Server-side encryption asked of S3 (`x-amz-server-side-encryption`). `None` leaves it to
/// the bucket's default (AWS encrypts every new object with SSE-S3 anyway); MinIO refuses
/// either header unless it has a key-management service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS (`aws:kms`) with the bucket's default key.
    AwsKms,
}

impl Encryption {
    /// The names the setting takes.
    pub const NAMES: [&'static str; 3] = ["none", "AES256", "aws:kms"];

    /// The encryption named `name`, as S3 spells it (`none`, `AES256`, `aws:kms`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "AES256" => Some(Self::Aes256),
            "aws:kms" => Some(Self::AwsKms),
            _ => None,
        }
    }

    fn header(self) -> Option<ServerSideEncryption> {
        match self {
            Self::None => None,
            Self::Aes256 => Some(ServerSideEncryption::Aes256),
            Self::AwsKms => Some(ServerSideEncryption::AwsKms),
        }
    }
}

/// Why the bucket could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare bucket {bucket}")]
pub struct BucketError {
    pub bucket: String,
    #[source]
    pub source: ObjectError,
}

/// The bucket, through aws-sdk-s3.
#[derive(Clone, Debug)]
pub struct S3Objects {
    client: Client,
    presigner: Client,
    bucket: String,
    encryption: Encryption,
    metrics: S3Metrics,
    region: String,
    credentials: Credentials,
    /// Built on first use from a URL the SDK presigned (see `presign.rs`).
    get_presigner: tokio::sync::OnceCell<GetPresigner>,
}

fn object_error<E>(operation: &'static str) -> impl FnOnce(E) -> ObjectError
where
    E: StdError + Send + Sync + 'static,
{
    move |error| ObjectError {
        operation,
        unreachable: false,
        source: Box::new(error),
    }
}

/// As [`object_error`], for a failed call: unreachable when the request never got an answer
/// (connection refused or cut, a timeout), rather than an answer refusing it.
fn call_error<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> ObjectError
where
    SdkError<E, HttpResponse>: StdError + Send + Sync + 'static,
{
    move |error| ObjectError {
        operation,
        unreachable: matches!(
            error,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        ),
        source: Box::new(error),
    }
}

/// Whether an S3 call failed because the thing is not there (HTTP 404).
fn is_missing<E>(error: &SdkError<E, HttpResponse>) -> bool {
    error
        .raw_response()
        .is_some_and(|response| response.status().as_u16() == 404)
}

fn credentials(settings: &S3Settings) -> Credentials {
    Credentials::new(
        &settings.access_key_id,
        &settings.secret_access_key,
        None,
        None,
        "file-core configuration",
    )
}

fn client_config(settings: &S3Settings, endpoint: Option<&str>) -> aws_sdk_s3::Config {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let credentials = credentials(settings);
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .credentials_provider(credentials)
        .region(Region::new(settings.region.clone()))
        .force_path_style(settings.force_path_style)
        // Checksums beyond Content-MD5 would add headers a presigned PUT must carry, and not
        // every S3-compatible server knows them; confirm checks the bytes itself.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

fn presigning_config(expires_in: Duration) -> Result<(PresigningConfig, Timestamp), ObjectError> {
    let start = SystemTime::now();
    let config = PresigningConfig::builder()
        .start_time(start)
        .expires_in(expires_in)
        .build()
        .map_err(object_error("presign"))?;
    Ok((config, timestamp(start).plus(expires_in)))
}

fn timestamp(at: SystemTime) -> Timestamp {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(millis)
}

fn presigned(request: &SdkPresignedRequest, expires_at: Timestamp) -> PresignedRequest {
    PresignedRequest {
        url: request.uri().to_owned(),
        method: request.method().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        expires_at,
    }
}

impl S3Objects {
    /// Builds the clients; nothing is contacted yet.
    #[must_use]
    pub fn new(settings: &S3Settings, metrics: S3Metrics) -> Self {
        let endpoint = settings.endpoint.as_deref();
        let public_endpoint = settings.public_endpoint.as_deref().or(endpoint);
        Self {
            client: Client::from_conf(client_config(settings, endpoint)),
            presigner: Client::from_conf(client_config(settings, public_endpoint)),
            bucket: settings.bucket.clone(),
            encryption: settings.encryption,
            metrics,
            region: settings.region.clone(),
            credentials: credentials(settings),
            get_presigner: tokio::sync::OnceCell::new(),
        }
    }

    /// The direct GET presigner, built once from the SDK's presigned URL of a probe key.
    async fn get_presigner(&self) -> Result<&GetPresigner, ObjectError> {
        self.get_presigner
            .get_or_try_init(|| async {
                let (config, _) = presigning_config(Duration::from_secs(60))?;
                let probe = self
                    .presigner
                    .get_object()
                    .bucket(&self.bucket)
                    .key(PROBE_KEY)
                    .presigned(config)
                    .await
                    .map_err(object_error("presign get"))?;
                GetPresigner::from_probe(probe.uri(), &self.region, self.credentials.clone().into())
                    .map_err(object_error("presign get"))
            })
            .await
    }

    /// Runs one S3 call inside its span and records its outcome and latency.
    async fn observed<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, SdkError<E, HttpResponse>> {
        let span = tracing::info_span!(
            "s3",
            otel.name = %format_args!("S3.{operation}"),
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "S3",
            rpc.method = operation,
        );
        let started = Instant::now();
        let result = call.instrument(span).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) if is_missing(error) => "not_found",
            Err(_) => "error",
        };
        self.metrics.observe(operation, outcome, started.elapsed());
        result
    }

    /// Creates the bucket when it does not exist.
    ///
    /// # Errors
    /// When S3 is unreachable or refuses.
    pub async fn ensure_bucket(&self, region: &str) -> Result<(), BucketError> {
        let bucket_error = |source| BucketError {
            bucket: self.bucket.clone(),
            source,
        };
        match self
            .observed(
                "HeadBucket",
                self.client.head_bucket().bucket(&self.bucket).send(),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if is_missing(&error) => {}
            Err(error) => return Err(bucket_error(call_error("head bucket")(error))),
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the default location and must not be named.
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        self.observed("CreateBucket", create.send())
            .await
            .map_err(|error| bucket_error(call_error("create bucket")(error)))?;
        tracing::info!(bucket = %self.bucket, "created the bucket");
        Ok(())
    }

    /// Writes the bucket's CORS rules: pages of `origins` may PUT presigned uploads and GET or
    /// HEAD presigned downloads, with any request header (the upload's signed ones vary) and
    /// the `ETag` readable. Replaces any rules the bucket had.
    ///
    /// # Errors
    /// When S3 is unreachable or refuses (MinIO, which has no bucket CORS, refuses).
    pub async fn apply_cors(&self, origins: &[String]) -> Result<(), BucketError> {
        let bucket_error = |source| BucketError {
            bucket: self.bucket.clone(),
            source,
        };
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(CORS_MAX_AGE_SECONDS)
            .build()
            .map_err(|error| bucket_error(object_error("bucket CORS rule")(error)))?;
        let cors = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(|error| bucket_error(object_error("bucket CORS rule")(error)))?;
        self.observed(
            "PutBucketCors",
            self.client
                .put_bucket_cors()
                .bucket(&self.bucket)
                .cors_configuration(cors)
                .send(),
        )
        .await
        .map_err(|error| bucket_error(call_error("put bucket CORS")(error)))?;
        tracing::info!(bucket = %self.bucket, ?origins, "bucket CORS rules written");
        Ok(())
    }
}

impl ObjectStorage for S3Objects {
    async fn presign_put(
        &self,
        key: &str,
        binding: UploadBinding,
        expires_in: Duration,
    ) -> Result<PresignedRequest, ObjectError> {
        let (config, expires_at) = presigning_config(expires_in)?;
        let size = i64::try_from(binding.size).map_err(object_error("presign put"))?;
        let request = self
            .presigner
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(binding.image.content_type())
            .content_md5(binding.md5.to_base64())
            .content_length(size)
            .set_server_side_encryption(self.encryption.header())
            .presigned(config)
            .await
            .map_err(object_error("presign put"))?;
        Ok(presigned(&request, expires_at))
    }

    async fn presign_get(
        &self,
        key: &str,
        signing: DownloadSigning,
    ) -> Result<PresignedRequest, ObjectError> {
        let presigner = self.get_presigner().await?;
        let start = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(signing.signed_at.as_millis()).unwrap_or(0));
        let url = presigner
            .presign_in_window(key, start, signing.expires_in)
            .map_err(object_error("presign get"))?;
        Ok(PresignedRequest {
            url,
            method: "GET".to_owned(),
            headers: Vec::new(),
            expires_at: signing.expires_at(),
        })
    }

    async fn object_size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        let call = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send();
        match self.observed("HeadObject", call).await {
            Ok(head) => Ok(Some(
                head.content_length()
                    .and_then(|length| u64::try_from(length).ok())
                    .unwrap_or(0),
            )),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(call_error("head object")(error)),
        }
    }

    async fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        let call = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send();
        let object = match self.observed("GetObject", call).await {
            Ok(object) => object,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(call_error("get object")(error)),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(object_error("read object"))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
    ) -> Result<(), ObjectError> {
        // No Content-MD5: the SigV4 signature covers the body's SHA-256, which S3 checks.
        let call = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_server_side_encryption(self.encryption.header())
            .body(bytes.into())
            .send();
        self.observed("PutObject", call)
            .await
            .map(|_| ())
            .map_err(call_error("put object"))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let call = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send();
        match self.observed("DeleteObject", call).await {
            Ok(_) => Ok(()),
            Err(error) if is_missing(&error) => Ok(()),
            Err(error) => Err(call_error("delete object")(error)),
        }
    }

    async fn list(
        &self,
        continuation: Option<String>,
        limit: u32,
    ) -> Result<ObjectPage, ObjectError> {
        let call = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_continuation_token(continuation)
            .send();
        let listed = self
            .observed("ListObjectsV2", call)
            .await
            .map_err(call_error("list objects"))?;
        let objects = listed
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?.to_owned();
                // An object without a date counts as just written: left alone.
                let modified = object
                    .last_modified()
                    .and_then(|at| at.to_millis().ok())
                    .map_or_else(Timestamp::now, Timestamp::from_millis);
                Some(ListedObject { key, modified })
            })
            .collect();
        let next = if listed.is_truncated() == Some(true) {
            listed.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(ObjectPage { objects, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(endpoint: Option<&str>, force_path_style: bool) -> S3Objects {
        let mut registry = telemetry::metrics::Registry::default();
        let metrics = crate::metrics::Metrics::register(&mut registry);
        S3Objects::new(
            &S3Settings {
                endpoint: endpoint.map(str::to_owned),
                public_endpoint: None,
                region: "eu-west-3".to_owned(),
                bucket: "hangout-files".to_owned(),
                force_path_style,
                access_key_id: "AKIDEXAMPLE".to_owned(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
                encryption: Encryption::Aes256,
            },
            metrics.s3,
        )
    }

    /// The direct presigner writes exactly the URL the SDK's presigner writes.
    #[tokio::test]
    async fn direct_get_urls_equal_the_sdks() {
        let key = "hangouts/0190a5b2-0000-7000-8000-000000000001/memories/a/b.png";
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let expires_in = Duration::from_secs(900);
        for (endpoint, path_style) in [
            (Some("http://127.0.0.1:9000"), true),
            (Some("https://minio.internal:9000"), true),
            (None, false),
        ] {
            let objects = objects(endpoint, path_style);
            let config = PresigningConfig::builder()
                .start_time(start)
                .expires_in(expires_in)
                .build()
                .unwrap();
            let sdk = objects
                .presigner
                .get_object()
                .bucket("hangout-files")
                .key(key)
                .presigned(config)
                .await
                .unwrap();
            let ours = objects
                .get_presigner()
                .await
                .unwrap()
                .presign(key, start, expires_in)
                .unwrap();
            assert_eq!(ours, sdk.uri(), "{endpoint:?}");
            assert_eq!(sdk.headers().count(), 0, "a GET needs no extra headers");
        }
    }
}
