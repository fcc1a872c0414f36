//! The renderer on real images: sizes, orientation, the capture time, no metadata left, and
//! refusals within the decoding budget.

use file_core::{
    domain::{
        image::ImageType,
        processing::{ImageSize, RenderFailure, RenderLimits, Rendered},
    },
    render::render,
};
use image::RgbaImage;

use crate::photos::{
    assert_no_metadata, is_red, jpeg, jpeg_declaring, marked, phone_jpeg, png_bomb,
    png_with_metadata, two_frame_gif, webp,
};

const LIMITS: RenderLimits = RenderLimits {
    max_pixels: 40_000_000,
    max_decoder_bytes: 256 * 1024 * 1024,
};

fn decoded(rendered: &Rendered, size: ImageSize) -> image::DynamicImage {
    let bytes = &rendered
        .renditions
        .iter()
        .find(|(each, _)| *each == size)
        .unwrap()
        .1;
    assert_no_metadata(bytes);
    image::load_from_memory(bytes).unwrap()
}

fn dimensions(image: &image::DynamicImage) -> (u32, u32) {
    (image.width(), image.height())
}

#[test]
fn a_phone_jpeg_is_turned_upright_sized_and_stripped() {
    // Orientation 6: the camera was turned; the stored pixels must be rotated 90° clockwise.
    let original = phone_jpeg(&marked(2000, 1000), 6, "2024:07:14 18:30:05", "+02:00");
    let rendered = render(ImageType::Jpeg, &original, LIMITS).unwrap();
    assert_eq!((rendered.facts.width, rendered.facts.height), (1000, 2000));
    let taken = rendered.facts.taken_at.unwrap();
    // 18:30:05 at +02:00 is 16:30:05 UTC.
    assert_eq!(taken.as_millis(), 1_720_974_605_000);
    let full = decoded(&rendered, ImageSize::Full);
    assert_eq!(dimensions(&full), (1000, 2000));
    // The top-left red quarter is now the top-right one.
    assert!(is_red(&full, 900, 100));
    assert!(!is_red(&full, 100, 100));
    assert_eq!(
        dimensions(&decoded(&rendered, ImageSize::Preview)),
        (800, 1600)
    );
    let thumbnail = decoded(&rendered, ImageSize::Thumbnail);
    assert_eq!(dimensions(&thumbnail), (160, 320));
    assert!(is_red(&thumbnail, 150, 10));
}

#[test]
fn a_png_keeps_transparency_and_loses_its_chunks() {
    let mut image = RgbaImage::from_pixel(400, 300, image::Rgba([20, 20, 230, 255]));
    image.put_pixel(0, 0, image::Rgba([230, 20, 20, 0]));
    // Orientation 3: upside down.
    let rendered = render(ImageType::Png, &png_with_metadata(&image, 3), LIMITS).unwrap();
    assert_eq!(
        rendered.facts.taken_at.map(|at| at.as_millis()),
        Some(1_704_164_645_000)
    );
    let full = decoded(&rendered, ImageSize::Full);
    assert_eq!(dimensions(&full), (400, 300));
    assert_eq!(
        full.to_rgba8().get_pixel(399, 299).0[3],
        0,
        "turned and still transparent"
    );
    assert!(full.color().has_alpha());
    assert_eq!(
        dimensions(&decoded(&rendered, ImageSize::Thumbnail)),
        (320, 240)
    );
    assert_eq!(
        dimensions(&decoded(&rendered, ImageSize::Preview)),
        (400, 300),
        "never enlarged"
    );
}

#[test]
fn an_animated_gif_renders_its_first_frame() {
    let rendered = render(ImageType::Gif, &two_frame_gif(64, 48), LIMITS).unwrap();
    let full = decoded(&rendered, ImageSize::Full);
    assert_eq!(dimensions(&full), (64, 48));
    assert!(is_red(&full, 40, 40), "the first frame is red");
    assert_eq!(rendered.facts.taken_at, None);
}

#[test]
fn a_webp_renders_as_jpeg() {
    let rendered = render(ImageType::Webp, &webp(&marked(640, 480)), LIMITS).unwrap();
    let thumbnail = decoded(&rendered, ImageSize::Thumbnail);
    assert_eq!(dimensions(&thumbnail), (320, 240));
    assert!(is_red(&thumbnail, 10, 10));
    let full = &rendered.renditions[0].1;
    assert!(full.starts_with(&[0xFF, 0xD8]), "photos render as JPEG");
}

#[test]
fn bombs_are_refused_from_the_header() {
    for (image, bytes) in [
        (ImageType::Jpeg, jpeg_declaring(60_000, 60_000)),
        (ImageType::Png, png_bomb(100_000)),
    ] {
        assert!(bytes.len() < 2_000, "the bomb is small");
        match render(image, &bytes, LIMITS) {
            Err(RenderFailure::TooLarge { width, height, .. }) => {
                assert!(u64::from(width) * u64::from(height) > LIMITS.max_pixels);
            }
            other => panic!("{image:?}: {:?}", other.map(|rendered| rendered.facts)),
        }
    }
}

#[test]
fn corrupt_truncated_and_mislabelled_bytes_are_undecodable() {
    let good = jpeg(&marked(256, 256), 90);
    let truncated = good[..good.len() / 3].to_vec();
    // Huffman tables of nonsense.
    let mut corrupt = good.clone();
    let tables = corrupt
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC4])
        .unwrap();
    corrupt[tables + 4..tables + 30].fill(0xFF);
    let png = png_with_metadata(&RgbaImage::new(8, 8), 1);
    for (image, bytes) in [
        (ImageType::Jpeg, truncated),
        (ImageType::Jpeg, corrupt),
        (ImageType::Jpeg, png.clone()),
        (ImageType::Gif, png),
        (ImageType::Png, b"\x89PNG\r\n\x1a\nnot really".to_vec()),
    ] {
        let result = render(image, &bytes, LIMITS);
        assert!(
            matches!(result, Err(RenderFailure::Undecodable(_))),
            "{image:?}: {:?}",
            result.map(|rendered| rendered.facts)
        );
    }
}

/// The SIMD downscaling (`fast_image_resize`) against `image`'s own bilinear resize of the
/// same pixels: a PNG renders losslessly, so the renditions differ from the plain path only
/// by the resizing, which must stay within a small mean difference per channel.
#[test]
fn downscaling_matches_the_plain_resize() {
    let original = RgbaImage::from_fn(1000, 750, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8, 255])
    });
    let rendered = render(ImageType::Png, &png_with_metadata(&original, 1), LIMITS).unwrap();
    let ours = decoded(&rendered, ImageSize::Thumbnail).to_rgba8();
    let plain = image::imageops::resize(
        &original,
        ours.width(),
        ours.height(),
        image::imageops::FilterType::Triangle,
    );
    let total: u64 = ours
        .as_raw()
        .iter()
        .zip(plain.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = total as f64 / ours.as_raw().len() as f64;
    assert!(mean < 4.0, "mean difference {mean:.2} per channel");
}
