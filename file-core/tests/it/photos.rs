//! Real images made here, with the metadata phones write (EXIF with GPS and orientation, XMP,
//! IPTC, ICC, comments, PNG text chunks), and the checks that renditions carry none of it.

use std::io::Cursor;

use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

/// Red in the top-left quarter, blue elsewhere: where the red lands shows the orientation.
pub fn marked(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 2 && y < height / 2 {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    })
}

/// Whether the pixel at (x, y) is the red mark.
pub fn is_red(image: &image::DynamicImage, x: u32, y: u32) -> bool {
    let [r, _, b] = image.to_rgb8().get_pixel(x, y).0;
    r > 150 && b < 100
}

/// The TIFF body of an EXIF block with an orientation, a capture time with its offset, a GPS
/// position and a camera make.
fn exif_tiff(orientation: u16, taken: &str, offset: &str) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"SecretPhone".to_vec()]),
        },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![taken.as_bytes().to_vec()]),
        },
        Field {
            tag: Tag::OffsetTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![offset.as_bytes().to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"N".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational { num: 48, denom: 1 },
                Rational { num: 51, denom: 1 },
                Rational { num: 24, denom: 1 },
            ]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    tiff.into_inner()
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len() + 2).unwrap();
    let mut bytes = vec![0xFF, marker];
    bytes.extend(length.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// Writes `image` (RGB) with `encoder`.
fn write_rgb(encoder: impl ImageEncoder, image: &RgbImage) {
    encoder
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
}

/// A plain JPEG of `image`.
pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_rgb(
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality),
        image,
    );
    bytes
}

/// A JPEG as a phone writes it: EXIF (orientation, capture time, GPS, make), XMP, IPTC, an
/// ICC profile and a comment, all after the start marker.
pub fn phone_jpeg(image: &RgbImage, orientation: u16, taken: &str, offset: &str) -> Vec<u8> {
    let plain = jpeg(image, 90);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_tiff(orientation, taken, offset));
    let mut bytes = plain[..2].to_vec();
    bytes.extend(segment(0xE1, &exif));
    bytes.extend(segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret-xmp-place</x:xmpmeta>",
    ));
    bytes.extend(segment(0xED, b"Photoshop 3.0\08BIM\x04\x04secret-iptc"));
    bytes.extend(segment(0xE2, b"ICC_PROFILE\0\x01\x01secret-icc-profile"));
    bytes.extend(segment(0xFE, b"secret-comment"));
    bytes.extend(&plain[2..]);
    bytes
}

/// A PNG with text chunks (tEXt, iTXt with XMP) and an eXIf chunk holding `orientation`.
pub fn png_with_metadata(image: &RgbaImage, orientation: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk("Comment".to_owned(), "secret-text-chunk".to_owned())
            .unwrap();
        encoder
            .add_itxt_chunk(
                "XML:com.adobe.xmp".to_owned(),
                "<x:xmpmeta>secret-xmp-place</x:xmpmeta>".to_owned(),
            )
            .unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_chunk(
                png::chunk::ChunkType(*b"eXIf"),
                &exif_tiff(orientation, "2024:01:02 03:04:05", "+00:00"),
            )
            .unwrap();
        writer.write_image_data(image.as_raw()).unwrap();
    }
    bytes
}

/// A GIF of two frames: red, then blue.
pub fn two_frame_gif(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut bytes);
        for colour in [Rgba([230, 20, 20, 255]), Rgba([20, 20, 230, 255])] {
            let frame = image::Frame::new(RgbaImage::from_pixel(width, height, colour));
            encoder.encode_frame(frame).unwrap();
        }
    }
    bytes
}

/// A (lossless) WebP of `image`.
pub fn webp(image: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_rgb(
        image::codecs::webp::WebPEncoder::new_lossless(&mut bytes),
        image,
    );
    bytes
}

/// A small JPEG whose frame header declares `width` x `height`.
pub fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(&marked(16, 16), 80);
    let sof = bytes
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC0])
        .unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A decompression bomb: a PNG of a few hundred bytes whose header declares `side` x `side`
/// pixels, with a deflate stream of zeros behind it.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0, 0, 0]).unwrap();
    }
    // IHDR's data starts after the 8-byte signature, its length and its type.
    bytes[16..20].copy_from_slice(&side.to_be_bytes());
    bytes[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// The markers of a JPEG's header segments, up to the start of scan.
fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "not a JPEG");
    let mut markers = Vec::new();
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 2 + length;
    }
    markers
}

/// The chunk types of a PNG.
fn png_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length =
            usize::try_from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())).unwrap();
        chunks.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + length;
    }
    chunks
}

/// Asserts `bytes` (a rendition) carries no metadata: no EXIF readable, no JPEG application
/// segment but JFIF's and no comment, no PNG text, EXIF, colour-profile or time chunk, and
/// none of the secret strings the originals carry.
pub fn assert_no_metadata(bytes: &[u8]) {
    assert!(
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(bytes))
            .is_err(),
        "a rendition has EXIF"
    );
    if bytes.starts_with(&[0xFF, 0xD8]) {
        for marker in jpeg_markers(bytes) {
            let application = (0xE1..=0xEF).contains(&marker);
            assert!(
                !application && marker != 0xFE,
                "a rendition has JPEG segment {marker:#x}"
            );
        }
    } else {
        for chunk in png_chunks(bytes) {
            assert!(
                !["tEXt", "zTXt", "iTXt", "eXIf", "iCCP", "tIME"].contains(&chunk.as_str()),
                "a rendition has PNG chunk {chunk}"
            );
        }
    }
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains("secret"), "a rendition kept metadata text");
    assert!(!text.contains("SecretPhone"), "a rendition kept the camera");
}
