//! The image types file-core accepts, and how each is recognised: by file-name extension and
//! content type when an upload is declared, and by its magic numbers once the bytes are in S3.

/// An accepted image type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageType {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl ImageType {
    const ALL: [Self; 4] = [Self::Jpeg, Self::Png, Self::Gif, Self::Webp];

    /// The one content type that goes with this type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The extension used in object keys.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Jpeg => &["jpg", "jpeg"],
            Self::Png => &["png"],
            Self::Gif => &["gif"],
            Self::Webp => &["webp"],
        }
    }

    /// The type of a file-name extension (without the dot), case-insensitively.
    #[must_use]
    pub fn from_extension(extension: &str) -> Option<Self> {
        let extension = extension.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|image| image.extensions().contains(&extension.as_str()))
    }

    /// The type of a content type as stored (already normalised).
    #[must_use]
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|image| image.content_type() == content_type)
    }

    /// Recognises an image by its first bytes (magic numbers); `None` for anything else.
    #[must_use]
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

/// Normalises a content type: parameters (`; charset=…`) and surrounding spaces dropped, lower
/// case. `image/jpegfoo` stays `image/jpegfoo`, so it matches no type.
#[must_use]
pub fn normalise_content_type(text: &str) -> String {
    text.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_case_insensitively() {
        assert_eq!(ImageType::from_extension("JPEG"), Some(ImageType::Jpeg));
        assert_eq!(ImageType::from_extension("jpg"), Some(ImageType::Jpeg));
        assert_eq!(ImageType::from_extension("WebP"), Some(ImageType::Webp));
        assert_eq!(ImageType::from_extension("bmp"), None);
        assert_eq!(ImageType::from_extension(""), None);
    }

    #[test]
    fn content_types_are_normalised() {
        assert_eq!(
            normalise_content_type(" IMAGE/PNG; charset=binary"),
            "image/png"
        );
        assert_eq!(normalise_content_type("image/jpegfoo"), "image/jpegfoo");
        assert_eq!(ImageType::from_content_type("image/jpegfoo"), None);
    }

    #[test]
    fn magic_numbers_are_recognised() {
        assert_eq!(
            ImageType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0]),
            Some(ImageType::Jpeg)
        );
        assert_eq!(
            ImageType::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageType::Png)
        );
        assert_eq!(ImageType::sniff(b"GIF89a..."), Some(ImageType::Gif));
        assert_eq!(ImageType::sniff(b"GIF87a..."), Some(ImageType::Gif));
        assert_eq!(
            ImageType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageType::Webp)
        );
        assert_eq!(ImageType::sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(ImageType::sniff(b"%PDF-1.7"), None);
        assert_eq!(ImageType::sniff(&[0xFF, 0xD8]), None);
        assert_eq!(ImageType::sniff(b""), None);
    }
}
