//! Photo processing in the bench: a worker process of its own (file-core in the worker role,
//! as compose runs it), waiting for the seeded photos' jobs before anything is timed, and the
//! `process` measurement: 12-megapixel JPEGs of about 10 MiB through the worker, one at a
//! time, with its CPU time and peak resident size per photo.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::file::v1 as file_pb;

use crate::bench::{
    grpc::{Backends, as_user},
    metrics, procs,
    seed::{content_md5, put_bytes},
};

/// The photo worker's name among the watched processes.
pub const WORKER: &str = "photo worker";

/// Jobs the worker process runs at once: seeding queues thousands of tiny photos, whose jobs
/// wait mostly on the embedded S3 server's disk writes. The `process` photos go one at a time
/// all the same (each is confirmed after the one before is done).
pub const WORKER_JOBS: u32 = 4;

/// Photos of one `process` run.
const PHOTOS: usize = 6;
/// A phone photo's size: 4000 x 3000 pixels.
const WIDTH: u16 = 4000;
const HEIGHT: u16 = 3000;
/// file-core's largest upload.
const MAX_BYTES: usize = 10 * 1024 * 1024;

/// Waits until the worker (metrics on `metrics_port`) has processed `count` photos; returns
/// the seconds waited.
///
/// # Errors
/// When the metrics cannot be read, or processing takes more than 10 minutes.
pub async fn wait_for_seeded(
    http: &reqwest::Client,
    metrics_port: u16,
    count: usize,
) -> anyhow::Result<f64> {
    wait_for_count(http, metrics_port, "photos_processed_total", count, 600)
        .await
        .context("the seeded photos were not processed")
}

/// Waits until file-core (metrics on `metrics_port`) has reported `count` processed photos
/// to hangout-core; returns the seconds waited.
///
/// # Errors
/// When the metrics cannot be read, or the reports take more than 5 minutes.
pub async fn wait_for_reports(
    http: &reqwest::Client,
    metrics_port: u16,
    count: usize,
) -> anyhow::Result<f64> {
    wait_for_count(
        http,
        metrics_port,
        "processing_reports_sent_total",
        count,
        300,
    )
    .await
    .context("the processed photos were not reported to hangout-core")
}

/// Polls `metric` on `metrics_port` until it reaches `count`, for at most `limit_seconds`.
async fn wait_for_count(
    http: &reqwest::Client,
    metrics_port: u16,
    metric: &str,
    count: usize,
    limit_seconds: u64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
    let wanted = count as f64;
    loop {
        let samples = metrics::scrape(http, metrics_port).await?;
        if samples.sum(metric, "") >= wanted {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(limit_seconds),
            "{metric} stayed below {count} for {limit_seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A photo-like JPEG of 4000 x 3000 pixels, just under 10 MiB: smooth gradients with fine
/// detail (which JPEG cannot compress away), at the highest quality that fits.
fn photo(seed: u32) -> anyhow::Result<Vec<u8>> {
    let mut pixels = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT) * 3);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    for y in 0..u32::from(HEIGHT) {
        for x in 0..u32::from(WIDTH) {
            // xorshift: detail on every pixel.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state & 0x3f) as u8;
            let [r, g, b] = [
                (x * 255 / u32::from(WIDTH)) as u8,
                (y * 255 / u32::from(HEIGHT)) as u8,
                ((x + y) % 256) as u8,
            ];
            pixels.extend([
                r.saturating_add(noise),
                g.saturating_add(noise / 2),
                b.saturating_sub(noise),
            ]);
        }
    }
    for quality in (60..=95).rev().step_by(5) {
        let mut encoded = Vec::new();
        jpeg_encoder::Encoder::new(&mut encoded, quality)
            .encode(&pixels, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb)
            .context("encode the bench photo")?;
        if encoded.len() <= MAX_BYTES {
            return Ok(encoded);
        }
    }
    anyhow::bail!("the bench photo does not fit in 10 MiB at any quality")
}

/// What the `process` run measured.
#[derive(Clone, Debug)]
pub struct ProcessRun {
    pub photos: usize,
    pub photo_bytes: usize,
    /// From the confirm of the first to the last READY.
    pub seconds: f64,
    /// The worker's CPU over that time.
    pub cpu_seconds: f64,
    /// The worker's peak resident bytes over that time.
    pub peak_rss: u64,
    /// Bytes of one THUMBNAIL rendition, on average.
    pub thumbnail_bytes: usize,
}

impl ProcessRun {
    #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
    pub fn cpu_ms_per_photo(&self) -> f64 {
        self.cpu_seconds * 1000.0 / self.photos as f64
    }

    /// Renditions (three per photo) per second of file-core CPU.
    #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
    pub fn renditions_per_cpu_second(&self) -> f64 {
        (self.photos * 3) as f64 / self.cpu_seconds.max(f64::EPSILON)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "photos": self.photos,
            "photo_bytes": self.photo_bytes,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "cpu_ms_per_photo": self.cpu_ms_per_photo(),
            "renditions_per_cpu_second": self.renditions_per_cpu_second(),
            "peak_rss_bytes": self.peak_rss,
            "thumbnail_bytes": self.thumbnail_bytes,
        })
    }
}

/// Uploads [`PHOTOS`] photos as `user_id` to `hangout_id` straight to file-core, confirms them
/// one after another, each once the one before is processed, and measures the worker
/// (`worker_pid`) meanwhile.
///
/// # Errors
/// A failed call, or a photo that does not end READY.
pub async fn run(
    backends: &Backends,
    http: &reqwest::Client,
    worker_pid: u32,
    ticks: f64,
    user_id: &str,
    hangout_id: &str,
) -> anyhow::Result<ProcessRun> {
    let photos: Vec<Vec<u8>> = (0..PHOTOS)
        .map(|index| photo(u32::try_from(index).unwrap_or(0) + 1))
        .collect::<anyhow::Result<_>>()?;
    let uploads = backends
        .files()
        .create_uploads(as_user(
            user_id,
            file_pb::CreateUploadsRequest {
                hangout_id: hangout_id.to_owned(),
                files: photos
                    .iter()
                    .enumerate()
                    .map(|(index, bytes)| file_pb::UploadFile {
                        memory_id: uuid_like(index),
                        file_name: format!("photo-{index}.jpg"),
                        content_type: "image/jpeg".to_owned(),
                        size: bytes.len() as u64,
                        md5: content_md5(bytes),
                    })
                    .collect(),
            },
        ))
        .await
        .context("create uploads")?
        .into_inner()
        .uploads;
    for (upload, bytes) in uploads.iter().zip(&photos) {
        put_bytes(http, upload, bytes.clone()).await?;
    }
    let ids: Vec<String> = uploads
        .iter()
        .map(|upload| upload.file_id.clone())
        .collect();
    let watched = [procs::Watched {
        name: WORKER,
        pid: worker_pid,
    }];
    procs::reset_peak(worker_pid);
    let before = procs::snapshot(&watched, ticks)?;
    let started = Instant::now();
    // One at a time, so the worker's peak is that of one photo.
    for id in &ids {
        let confirmed = backends
            .files()
            .confirm_uploads(as_user(
                user_id,
                file_pb::ConfirmUploadsRequest {
                    file_ids: vec![id.clone()],
                },
            ))
            .await
            .context("confirm uploads")?
            .into_inner();
        anyhow::ensure!(
            confirmed.failures.is_empty(),
            "a photo was not confirmed: {:?}",
            confirmed.failures
        );
        wait_until_processed(backends, user_id, id, started).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = procs::snapshot(&watched, ticks)?.since(&before)[0];
    let (_, peak_rss) = procs::memory(worker_pid)?;
    let thumbnails = backends
        .files()
        .get_files(as_user(
            user_id,
            file_pb::GetFilesRequest {
                ids: ids.clone(),
                image_sizes: vec![file_pb::ImageSize::Thumbnail as i32],
                without_download_urls: true,
            },
        ))
        .await?
        .into_inner()
        .files;
    let mut thumbnail_bytes = 0;
    for file in &thumbnails {
        let url = &file.images.first().context("no thumbnail")?.url;
        thumbnail_bytes += http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .len();
    }
    Ok(ProcessRun {
        photos: PHOTOS,
        photo_bytes: photos.iter().map(Vec::len).sum::<usize>() / PHOTOS,
        seconds,
        cpu_seconds,
        peak_rss,
        thumbnail_bytes: thumbnail_bytes / PHOTOS,
    })
}

/// Waits until the photo `id` is READY.
async fn wait_until_processed(
    backends: &Backends,
    user_id: &str,
    id: &str,
    started: Instant,
) -> anyhow::Result<()> {
    loop {
        let file = backends
            .files()
            .get_files(as_user(
                user_id,
                file_pb::GetFilesRequest {
                    ids: vec![id.to_owned()],
                    image_sizes: Vec::new(),
                    without_download_urls: true,
                },
            ))
            .await?
            .into_inner()
            .files
            .into_iter()
            .next()
            .context("the bench photo is gone")?;
        match file.processing() {
            file_pb::Processing::Queued => {}
            file_pb::Processing::Ready => return Ok(()),
            other => anyhow::bail!("a bench photo ended {other:?}"),
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the photos were not processed within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A memory id of the right shape (file-core does not look it up).
fn uuid_like(index: usize) -> String {
    format!("00000000-0000-7000-8000-{index:012}")
}
