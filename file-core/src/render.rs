//! The renderer: implements the domain's [`Renderer`] port with the `image` crate (decoding
//! and encoding) and `kamadak-exif` (orientation, when the photo was taken).
//!
//! Content disarm and reconstruction: the original is decoded to pixels and only pixels are
//! encoded again, so no metadata (EXIF, XMP, IPTC, ICC profiles, comments) nor anything hidden
//! after the image data reaches a rendition. The encoders used write none: `jpeg-encoder`
//! writes a bare JFIF header, `image`'s PNG encoder no text or colour-profile chunks (the
//! tests parse the renditions back to check).
//!
//! The budget is checked from the header before decoding: the pixel count against
//! [`RenderLimits::max_pixels`], and the decoder's allocations against
//! [`RenderLimits::max_decoder_bytes`], so a small file declaring huge dimensions (a
//! decompression bomb) is refused before any buffer is allocated for it.

use std::io::Cursor;

use image::{
    DynamicImage, ImageDecoder as _, ImageFormat, ImageReader, Limits, codecs::png::PngEncoder,
    metadata::Orientation,
};

use crate::domain::{
    image::ImageType,
    processing::{
        ImageFacts, ImageSize, RenderFailure, RenderLimits, Rendered, Renderer, fitted,
        rendition_type,
    },
    time::Timestamp,
};

/// JPEG quality of each rendition: FULL and PREVIEW visually lossless for photos at a fraction
/// of the bytes; thumbnails, shown small and many to a page, lower (a page of 100 stays
/// under 3 MB).
fn jpeg_quality(size: ImageSize) -> u8 {
    match size {
        ImageSize::Full => 85,
        ImageSize::Preview => 82,
        ImageSize::Thumbnail => 75,
    }
}

/// Renders on tokio's blocking threads; how many at once is the worker's concern.
#[derive(Clone, Copy, Debug)]
pub struct ImageRenderer {
    limits: RenderLimits,
}

impl ImageRenderer {
    #[must_use]
    pub fn new(limits: RenderLimits) -> Self {
        Self { limits }
    }
}

impl Renderer for ImageRenderer {
    async fn render(&self, image: ImageType, bytes: Vec<u8>) -> Result<Rendered, RenderFailure> {
        let limits = self.limits;
        tokio::task::spawn_blocking(move || render(image, &bytes, limits))
            .await
            .unwrap_or_else(|_| Err(RenderFailure::Undecodable(image.content_type())))
    }
}

fn format(image: ImageType) -> ImageFormat {
    match image {
        ImageType::Jpeg => ImageFormat::Jpeg,
        ImageType::Png => ImageFormat::Png,
        ImageType::Gif => ImageFormat::Gif,
        ImageType::Webp => ImageFormat::WebP,
    }
}

/// Decodes `bytes` as `image` (never guessing another type) within `limits` and renders every
/// size. Synchronous and CPU-bound.
///
/// # Errors
/// [`RenderFailure`] when the bytes are not a readable image of that type or exceed the budget.
pub fn render(
    image: ImageType,
    bytes: &[u8],
    limits: RenderLimits,
) -> Result<Rendered, RenderFailure> {
    let undecodable = || RenderFailure::Undecodable(image.content_type());
    if image == ImageType::Jpeg && !jpeg_is_complete(bytes) {
        return Err(undecodable());
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format(image));
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(|_| undecodable())?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(RenderFailure::TooLarge {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 || decoder.total_bytes() > limits.max_decoder_bytes {
        return Err(undecodable());
    }
    decoder
        .set_limits(decoder_limits(limits))
        .map_err(|_| undecodable())?;
    let exif = Exif::read(bytes);
    // For GIF this is the first frame: renditions of animations are stills.
    let mut pixels = DynamicImage::from_decoder(decoder).map_err(|_| undecodable())?;
    if let Some(orientation) = exif.orientation {
        pixels.apply_orientation(orientation);
    }
    let pixels = normalised(pixels, rendition_type(image));
    let facts = ImageFacts {
        width: pixels.width(),
        height: pixels.height(),
        taken_at: exif.taken_at,
    };
    let mut renditions = Vec::with_capacity(ImageSize::ALL.len());
    let mut source = pixels;
    for size in ImageSize::ALL {
        let (width, height) = fitted(source.width(), source.height(), size.longest_side());
        if (width, height) != (source.width(), source.height()) {
            source = downscaled(&source, width, height).ok_or_else(undecodable)?;
        }
        renditions.push((
            size,
            encode(&source, rendition_type(image), jpeg_quality(size))?,
        ));
    }
    Ok(Rendered { facts, renditions })
}

/// `pixels` (8-bit RGB or RGBA, as [`normalised`] makes them) scaled down to `width` x
/// `height` with a bilinear filter by `fast_image_resize` (SIMD; `image`'s own resizing took a
/// quarter of a 12-megapixel photo's processing), transparency premultiplied so that
/// transparent pixels do not bleed their colour.
fn downscaled(pixels: &DynamicImage, width: u32, height: u32) -> Option<DynamicImage> {
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let pixel_type = match pixels {
        DynamicImage::ImageRgb8(_) => PixelType::U8x3,
        DynamicImage::ImageRgba8(_) => PixelType::U8x4,
        _ => return None,
    };
    let source = images::ImageRef::new(
        pixels.width(),
        pixels.height(),
        pixels.as_bytes(),
        pixel_type,
    )
    .ok()?;
    let mut target = images::Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&source, &mut target, &options).ok()?;
    let buffer = target.into_vec();
    match pixel_type {
        PixelType::U8x3 => {
            image::RgbImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgb8)
        }
        _ => image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgba8),
    }
}

/// Whether a JPEG's image data ends: `image` runs its JPEG decoder leniently (missing data
/// decodes as grey), so a truncated upload would render. The headers are walked to the first
/// start of scan; in the entropy-coded data after it an `FF` byte is always followed by `00`
/// or a restart marker, so an `FF D9` there is the end of the image, not data.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut at = 2;
    loop {
        let (Some(0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            0xDA => {
                return bytes
                    .get(at + 2..)
                    .is_some_and(|scan| scan.windows(2).any(|pair| pair == [0xFF, 0xD9]));
            }
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let (Some(&high), Some(&low)) = (bytes.get(at + 2), bytes.get(at + 3)) else {
                    return false;
                };
                at += 2 + usize::from(u16::from_be_bytes([high, low]));
            }
        }
    }
}

fn decoder_limits(limits: RenderLimits) -> Limits {
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut decoder = Limits::default();
    decoder.max_image_width = Some(side);
    decoder.max_image_height = Some(side);
    decoder.max_alloc = Some(limits.max_decoder_bytes);
    decoder
}

/// 8 bits per channel; RGB for JPEG output (transparency flattened onto white), RGB or RGBA
/// for PNG output as the source has transparency or not.
fn normalised(pixels: DynamicImage, output: ImageType) -> DynamicImage {
    match output {
        ImageType::Jpeg if pixels.color().has_alpha() => {
            let mut flat = image::RgbImage::new(pixels.width(), pixels.height());
            for (target, source) in flat.pixels_mut().zip(pixels.to_rgba8().pixels()) {
                let [r, g, b, a] = source.0;
                let over_white = |channel: u8| {
                    let alpha = u16::from(a);
                    let value = (u16::from(channel) * alpha + 255 * (255 - alpha)) / 255;
                    u8::try_from(value).unwrap_or(u8::MAX)
                };
                target.0 = [over_white(r), over_white(g), over_white(b)];
            }
            DynamicImage::ImageRgb8(flat)
        }
        ImageType::Jpeg => DynamicImage::ImageRgb8(pixels.into_rgb8()),
        _ if pixels.color().has_alpha() => DynamicImage::ImageRgba8(pixels.into_rgba8()),
        _ => DynamicImage::ImageRgb8(pixels.into_rgb8()),
    }
}

fn encode(pixels: &DynamicImage, output: ImageType, quality: u8) -> Result<Vec<u8>, RenderFailure> {
    let failed = || RenderFailure::Undecodable(output.content_type());
    let mut encoded = Vec::new();
    match (output, pixels) {
        (ImageType::Jpeg, DynamicImage::ImageRgb8(rgb)) => {
            let width = u16::try_from(rgb.width()).map_err(|_| failed())?;
            let height = u16::try_from(rgb.height()).map_err(|_| failed())?;
            // A bare JFIF header: no application segment is added.
            jpeg_encoder::Encoder::new(&mut encoded, quality)
                .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
                .map_err(|_| failed())?;
        }
        (ImageType::Jpeg, _) => return Err(failed()),
        (_, pixels) => pixels
            .write_with_encoder(PngEncoder::new(&mut encoded))
            .map_err(|_| failed())?,
    }
    Ok(encoded)
}

/// What the EXIF of an original says, as far as processing cares.
#[derive(Debug, Default)]
struct Exif {
    orientation: Option<Orientation>,
    taken_at: Option<Timestamp>,
}

impl Exif {
    /// Unreadable or missing EXIF is no EXIF: the image is still rendered.
    fn read(bytes: &[u8]) -> Self {
        let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) else {
            return Self::default();
        };
        let orientation = exif
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|field| field.value.get_uint(0))
            .and_then(|value| u8::try_from(value).ok())
            .and_then(Orientation::from_exif);
        Self {
            orientation,
            taken_at: taken_at(&exif),
        }
    }
}

fn ascii(exif: &exif::Exif, tag: exif::Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, exif::In::PRIMARY)?.value {
        exif::Value::Ascii(values) => values.first().map(Vec::as_slice),
        _ => None,
    }
}

/// `DateTimeOriginal` in UTC, by `OffsetTimeOriginal`. Cameras without a time zone setting
/// write local time only; that is taken as UTC, which can be off by the zone's offset but
/// keeps the day and the order of a hangout's photos.
fn taken_at(exif: &exif::Exif) -> Option<Timestamp> {
    let mut taken = exif::DateTime::from_ascii(ascii(exif, exif::Tag::DateTimeOriginal)?).ok()?;
    if let Some(offset) = ascii(exif, exif::Tag::OffsetTimeOriginal) {
        // A malformed offset leaves it unknown.
        let _ = taken.parse_offset(offset);
    }
    let date = time::Date::from_calendar_date(
        i32::from(taken.year),
        time::Month::try_from(taken.month).ok()?,
        taken.day,
    )
    .ok()?;
    let clock = time::Time::from_hms(taken.hour, taken.minute, taken.second).ok()?;
    let offset = time::UtcOffset::from_whole_seconds(i32::from(taken.offset.unwrap_or(0)) * 60)
        .unwrap_or(time::UtcOffset::UTC);
    let instant = time::PrimitiveDateTime::new(date, clock).assume_offset(offset);
    let millis = instant.unix_timestamp_nanos() / 1_000_000;
    Some(Timestamp::from_millis(i64::try_from(millis).ok()?))
}
