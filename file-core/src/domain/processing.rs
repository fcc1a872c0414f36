//! Photo processing: the rules of renditions and of the job queue that makes them.
//!
//! Confirming an upload queues a job in the same transaction that marks the file UPLOADED.
//! A worker claims a job for a lease, renders the original (decoded fully and re-encoded, so
//! nothing the bytes hid beyond the pixels survives: no EXIF, XMP, IPTC or ICC), writes the
//! renditions, and finishes the job together with the file's processing state. A worker that
//! dies mid-job leaves its lease to run out, and the job is claimed again; rendering twice
//! writes the same keys with the same bytes, so a repeat is harmless.
//!
//! Failures are of two kinds. An image that cannot be rendered (corrupt, truncated, another
//! type than declared, or larger than the decoding budget) fails for good at once: FAILED.
//! Anything else (object storage or the database unreachable) is retried with exponential
//! backoff, and after [`MAX_ATTEMPTS`] the job is dead-lettered and the file FAILED.

use std::{future::Future, time::Duration};

use crate::domain::{file::FileRecord, image::ImageType, time::Timestamp};

/// Attempts of one job before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// The longest wait between attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);

/// A rendition's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageSize {
    /// At most 320 pixels on the longer side.
    Thumbnail,
    /// At most 1600 pixels on the longer side.
    Preview,
    /// The full size, re-encoded.
    Full,
}

impl ImageSize {
    /// Largest first: each smaller rendition is made from the one before.
    pub const ALL: [Self; 3] = [Self::Full, Self::Preview, Self::Thumbnail];

    /// The longest side allowed, in pixels; `None` for the full size.
    #[must_use]
    pub fn longest_side(self) -> Option<u32> {
        match self {
            Self::Thumbnail => Some(320),
            Self::Preview => Some(1600),
            Self::Full => None,
        }
    }

    /// The name used in object keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thumbnail => "thumbnail",
            Self::Preview => "preview",
            Self::Full => "full",
        }
    }
}

/// Where an UPLOADED file is in processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Processing {
    /// Confirmed; renditions not made yet.
    Queued,
    /// Renditions made.
    Ready,
    /// The bytes could not be rendered, or every attempt failed.
    Failed,
}

impl Processing {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Ready => "READY",
            Self::Failed => "FAILED",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "QUEUED" => Some(Self::Queued),
            "READY" => Some(Self::Ready),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// What processing learned about an image, read before its metadata was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// Pixels, after the EXIF orientation was applied.
    pub width: u32,
    pub height: u32,
    /// When the photo was taken (EXIF), if known.
    pub taken_at: Option<Timestamp>,
}

/// The renditions of one image, largest first.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub facts: ImageFacts,
    pub renditions: Vec<(ImageSize, Vec<u8>)>,
}

/// Why an image cannot be rendered; final, retrying cannot help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderFailure {
    #[error("the image is {width}x{height} pixels, more than the {limit} allowed")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("the bytes are not a readable {0} image")]
    Undecodable(&'static str),
}

/// The decoding budget: checked from the header before anything is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderLimits {
    /// Pixels of an image (width x height), at most.
    pub max_pixels: u64,
    /// Bytes the decoder may allocate at once, at most.
    pub max_decoder_bytes: u64,
}

/// Makes renditions: `crate::render` implements it with the `image` crate, off the async
/// threads (it is CPU-bound).
pub trait Renderer: Send + Sync + 'static {
    /// Decodes `bytes` as `image` and renders every [`ImageSize`] without metadata, in
    /// [`rendition_type`]`(image)`.
    fn render(
        &self,
        image: ImageType,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<Rendered, RenderFailure>> + Send;
}

/// The type renditions of `source` are encoded in: photos (JPEG, WebP) as JPEG, which is small
/// and understood everywhere; PNG and GIF (graphics, often with transparency) as PNG. Fixed
/// per source type, so the keys of a file's renditions follow from its record alone.
#[must_use]
pub fn rendition_type(source: ImageType) -> ImageType {
    match source {
        ImageType::Jpeg | ImageType::Webp => ImageType::Jpeg,
        ImageType::Png | ImageType::Gif => ImageType::Png,
    }
}

/// The object key of a rendition, in the media prefix: built from ids only, beside (never
/// inside) the quarantine prefix of uploads.
#[must_use]
pub fn rendition_key(file: &FileRecord, size: ImageSize) -> String {
    format!(
        "media/hangouts/{}/memories/{}/{}/{}.{}",
        file.hangout,
        file.memory,
        file.id,
        size.as_str(),
        rendition_type(file.image).extension()
    )
}

/// Every object a file may have: the original and its renditions.
#[must_use]
pub fn object_keys(file: &FileRecord) -> Vec<String> {
    let mut keys = vec![file.object_key.clone()];
    keys.extend(ImageSize::ALL.iter().map(|size| rendition_key(file, *size)));
    keys
}

/// A claimed job: the file to process and which attempt this is (1 for the first).
#[derive(Clone, Debug)]
pub struct Job {
    pub file: FileRecord,
    pub attempt: u32,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Renditions written; the file is READY.
    Ready(ImageFacts),
    /// The file is FAILED: the image cannot be rendered, or the job was dead-lettered.
    Failed(String),
}

/// When the attempt after `attempt` failed ones may start (`first_delay` after the first
/// failure, doubled after each further one), or `None` when the job is out of attempts and goes
/// to the dead letters.
#[must_use]
pub fn retry_at(now: Timestamp, attempt: u32, first_delay: Duration) -> Option<Timestamp> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let doublings = attempt.saturating_sub(1).min(16);
    let delay = first_delay
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY);
    Some(now.plus(delay))
}

/// The size of a rendition of a `width` x `height` image no longer than `longest` on its
/// longer side, keeping the aspect ratio (each side at least one pixel); never enlarged.
#[must_use]
pub fn fitted(width: u32, height: u32, longest: Option<u32>) -> (u32, u32) {
    let Some(longest) = longest else {
        return (width, height);
    };
    let longer = width.max(height);
    if longer <= longest {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = u64::from(side) * u64::from(longest) / u64::from(longer);
        u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
    };
    (scale(width), scale(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_dead_letter() {
        let now = Timestamp::from_millis(0);
        let first = Duration::from_secs(2);
        assert_eq!(retry_at(now, 1, first), Some(Timestamp::from_millis(2_000)));
        assert_eq!(retry_at(now, 2, first), Some(Timestamp::from_millis(4_000)));
        assert_eq!(
            retry_at(now, 4, first),
            Some(Timestamp::from_millis(16_000))
        );
        assert_eq!(retry_at(now, MAX_ATTEMPTS, first), None);
        let long = Duration::from_secs(200);
        assert_eq!(retry_at(now, 3, long), Some(now.plus(MAX_RETRY_DELAY)));
    }

    #[test]
    fn renditions_fit_without_enlarging() {
        assert_eq!(fitted(4000, 3000, Some(1600)), (1600, 1200));
        assert_eq!(fitted(3000, 4000, Some(320)), (240, 320));
        assert_eq!(fitted(100, 50, Some(320)), (100, 50));
        assert_eq!(fitted(10_000, 1, Some(320)), (320, 1));
        assert_eq!(fitted(4000, 3000, None), (4000, 3000));
    }

    #[test]
    fn photos_render_as_jpeg_graphics_as_png() {
        assert_eq!(rendition_type(ImageType::Webp), ImageType::Jpeg);
        assert_eq!(rendition_type(ImageType::Gif), ImageType::Png);
    }
}
