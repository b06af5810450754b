//! Decoding untrusted image bytes, within limits, to pixels PDQ can read.
//!
//! Every check that can be made without decoding pixels is made first: the
//! size of the bytes, the format from its magic bytes (never from a name or
//! a declared type), and the dimensions from the header. Only then is the
//! image decoded, by a pure-Rust decoder that is itself handed the same
//! limits, under `catch_unwind` so that a decoder bug that panics is an
//! error for this image rather than a crash of the engine.

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};

/// What an image may cost to decode.
///
/// The defaults fit profile photos and group icons: clients send those
/// resized to well under a megapixel, so even a camera original sent as-is
/// passes with room to spare, while a hostile file is held to a bounded
/// amount of memory and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest encoded size. Default 16 MiB: several times a camera
    /// original JPEG, and the JPEG decoder copies its input once.
    pub max_bytes: usize,
    /// Widest image. Default 8192: the long side of a 50-megapixel camera
    /// sensor is about that.
    pub max_width: u32,
    /// Tallest image. Default 8192, as for the width.
    pub max_height: u32,
    /// Most pixels. Default 40 million: a camera original of up to 40
    /// megapixels, and no more, however the sides are shaped.
    pub max_pixels: u64,
    /// Most memory the decoder may allocate, its output included. Default
    /// 256 MiB: an 8-bit RGBA image at the pixel limit is 160 MB, so any
    /// ordinary image within the other limits fits, while 16-bit and float
    /// images at that size are refused.
    pub max_alloc_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_width: 8192,
            max_height: 8192,
            max_pixels: 40_000_000,
            max_alloc_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The formats accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG (JFIF or Exif).
    Jpeg,
    /// PNG.
    Png,
    /// GIF (its first frame).
    Gif,
    /// WebP, lossy or lossless (its first frame).
    WebP,
}

impl ImageKind {
    /// The format's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Gif => "GIF",
            Self::WebP => "WebP",
        }
    }

    fn as_image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
        }
    }
}

impl std::fmt::Display for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an image could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// No bytes at all.
    #[error("image is empty (0 bytes)")]
    Empty,
    /// More bytes than [`ImageLimits::max_bytes`].
    #[error("image is {len} bytes; the limit is {limit} bytes")]
    TooManyBytes {
        /// The size given.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The magic bytes are of no image format known here.
    #[error("image bytes are not a JPEG, PNG, GIF or WebP (first bytes {first_bytes})")]
    UnknownFormat {
        /// Up to the first 8 bytes, in hex.
        first_bytes: String,
    },
    /// A recognised image format that is not accepted.
    #[error("image is a {format}, which is not accepted (only JPEG, PNG, GIF and WebP are)")]
    UnsupportedFormat {
        /// The format the magic bytes name.
        format: &'static str,
    },
    /// A side over [`ImageLimits::max_width`] or
    /// [`ImageLimits::max_height`].
    #[error("image is {width}x{height} pixels; the limit is {max_width}x{max_height}")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The width limit.
        max_width: u32,
        /// The height limit.
        max_height: u32,
    },
    /// More pixels than [`ImageLimits::max_pixels`].
    #[error("image is {width}x{height} = {pixels} pixels; the limit is {limit} pixels")]
    TooManyPixels {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Their product.
        pixels: u64,
        /// The limit.
        limit: u64,
    },
    /// A header declaring no pixels.
    #[error("{kind} header declares a {width}x{height} image, which has no pixels")]
    NoPixels {
        /// The format.
        kind: ImageKind,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The decoded pixels would take more than
    /// [`ImageLimits::max_alloc_bytes`].
    #[error(
        "decoding this {width}x{height} {kind} needs {needed} bytes; the limit is {limit} bytes"
    )]
    TooMuchMemory {
        /// The format.
        kind: ImageKind,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Bytes the decoded pixels take.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// The decoder itself stopped at one of the limits it was given.
    #[error("{kind} decoder stopped at a limit: {message}")]
    DecoderLimit {
        /// The format.
        kind: ImageKind,
        /// The decoder's words.
        message: String,
    },
    /// The data does not decode.
    #[error("{kind} data is corrupt: {message}")]
    Corrupt {
        /// The format.
        kind: ImageKind,
        /// The decoder's words.
        message: String,
    },
    /// A valid file using a feature the decoder lacks (for example a JPEG
    /// coding process it does not implement).
    #[error("{kind} image uses a feature the decoder does not support: {message}")]
    UnsupportedFeature {
        /// The format.
        kind: ImageKind,
        /// The decoder's words.
        message: String,
    },
    /// The decoder panicked: a bug in it, caught and turned into an error.
    #[error("{kind} decoder failed internally (panicked): {message}")]
    DecoderPanicked {
        /// The format.
        kind: ImageKind,
        /// The panic's message.
        message: String,
    },
}

/// A decoded image: its pixels as the decoder left them, read as
/// luminance row by row.
pub struct DecodedImage {
    kind: ImageKind,
    pixels: DynamicImage,
}

impl DecodedImage {
    /// The format it was decoded from.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.pixels.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.pixels.height()
    }

    /// Hand `sink` the luminance of every row `wanted` asks for, top to
    /// bottom, converting one row at a time into a buffer reused across
    /// rows. Luminance is PDQ's: `0.299 R + 0.587 G + 0.114 B` in single
    /// precision, or the grey level itself. Alpha is ignored (a transparent
    /// pixel counts as the colour stored under it), and EXIF orientation is
    /// not applied: the stored pixels are read as they are, as the
    /// reference hashers do, so that hashes agree with the banks' hashes.
    pub fn luma_rows(
        &self,
        mut wanted: impl FnMut(usize) -> bool,
        mut sink: impl FnMut(usize, &[f32]),
    ) {
        let mut rows = LumaRows {
            width: self.pixels.width() as usize,
            wanted: &mut wanted,
            sink: &mut sink,
        };
        match &self.pixels {
            DynamicImage::ImageLuma8(grey) => rows.visit(grey.as_raw(), 1, grey_luma),
            DynamicImage::ImageLumaA8(grey) => rows.visit(grey.as_raw(), 2, grey_luma),
            DynamicImage::ImageRgb8(rgb) => rows.visit(rgb.as_raw(), 3, rgb_luma),
            DynamicImage::ImageRgba8(rgba) => rows.visit(rgba.as_raw(), 4, rgb_luma),
            // Deeper images (16-bit PNG) are brought to 8 bits first, as the
            // reference reads them; rare enough that the copy does not matter.
            DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
                rows.visit(self.pixels.to_luma8().as_raw(), 1, grey_luma)
            }
            other => rows.visit(other.to_rgb8().as_raw(), 3, rgb_luma),
        }
    }

    /// The whole image's luminance, row-major, `width * height` values.
    pub fn to_luma(&self) -> Vec<f32> {
        let mut luma = Vec::with_capacity(self.width() as usize * self.height() as usize);
        self.luma_rows(|_| true, |_, row| luma.extend_from_slice(row));
        luma
    }
}

/// Where [`DecodedImage::luma_rows`] sends rows.
struct LumaRows<'a, W, S> {
    width: usize,
    wanted: &'a mut W,
    sink: &'a mut S,
}

impl<W: FnMut(usize) -> bool, S: FnMut(usize, &[f32])> LumaRows<'_, W, S> {
    /// Convert the wanted rows of interleaved 8-bit `samples`, `channels`
    /// to a pixel, with `to_luma` (generic, so that it is inlined into the
    /// per-pixel loop).
    fn visit(&mut self, samples: &[u8], channels: usize, to_luma: impl Fn(&[u8]) -> f32) {
        if self.width == 0 {
            return;
        }
        let mut row_luma = vec![0.0f32; self.width];
        for (y, row) in samples.chunks_exact(self.width * channels).enumerate() {
            if (self.wanted)(y) {
                for (luma, pixel) in row_luma.iter_mut().zip(row.chunks_exact(channels)) {
                    *luma = to_luma(pixel);
                }
                (self.sink)(y, &row_luma);
            }
        }
    }
}

/// PDQ's luminance weights (the ITU-R BT.601 luma coefficients), in single
/// precision as the reference computes them.
const LUMA_FROM_RED: f32 = 0.299;
const LUMA_FROM_GREEN: f32 = 0.587;
const LUMA_FROM_BLUE: f32 = 0.114;

fn rgb_luma(pixel: &[u8]) -> f32 {
    match pixel {
        [red, green, blue, ..] => {
            LUMA_FROM_RED * f32::from(*red)
                + LUMA_FROM_GREEN * f32::from(*green)
                + LUMA_FROM_BLUE * f32::from(*blue)
        }
        _ => 0.0,
    }
}

fn grey_luma(pixel: &[u8]) -> f32 {
    pixel.first().copied().map_or(0.0, f32::from)
}

/// Decode `bytes` within `limits`.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DecodedImage, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::TooManyBytes {
            len: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let kind = sniff_kind(bytes)?;
    catching_panics(kind, || {
        check_header(kind, bytes, limits)?;
        if kind == ImageKind::Jpeg {
            check_jpeg_complete(bytes)?;
        }
        decode_pixels(kind, bytes, limits)
    })
}

/// The accepted format `bytes` begin with, from their magic bytes alone.
pub fn sniff_kind(bytes: &[u8]) -> Result<ImageKind, MediaError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageKind::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageKind::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(ImageKind::Gif);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Ok(ImageKind::WebP);
    }
    match refused_format_name(bytes) {
        Some(format) => Err(MediaError::UnsupportedFormat { format }),
        None => Err(MediaError::UnknownFormat {
            first_bytes: first_bytes_hex(bytes),
        }),
    }
}

/// Name a format that is recognised but not accepted, so that the error
/// says what was sent.
fn refused_format_name(bytes: &[u8]) -> Option<&'static str> {
    // The ISO base media formats phones produce (HEIC, AVIF) share a box
    // layout: a size, then `ftyp` and a brand.
    if bytes.get(4..8) == Some(b"ftyp") {
        return match bytes.get(8..12) {
            Some(b"avif" | b"avis") => Some("AVIF"),
            Some(b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1") => {
                Some("HEIF/HEIC")
            }
            _ => None,
        };
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    use image::ImageFormat as F;
    Some(match image::guess_format(bytes).ok()? {
        F::Tiff => "TIFF",
        F::Bmp => "BMP",
        F::Ico => "ICO",
        F::Avif => "AVIF",
        F::Pnm => "PNM",
        F::Dds => "DDS",
        F::Hdr => "Radiance HDR",
        F::OpenExr => "OpenEXR",
        F::Qoi => "QOI",
        F::Farbfeld => "farbfeld",
        F::Tga => "TGA",
        _ => "image format other than JPEG, PNG, GIF or WebP",
    })
}

fn first_bytes_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read the header (no pixels) and refuse dimensions over the limits, and
/// pixels that would not fit in the allowed memory.
fn check_header(kind: ImageKind, bytes: &[u8], limits: &ImageLimits) -> Result<(), MediaError> {
    // The header is read with no limits of our own so that the refusal
    // below can name the dimensions; reading a header allocates nothing in
    // proportion to them.
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.as_image_format());
    reader.no_limits();
    let decoder = reader
        .into_decoder()
        .map_err(|error| decoder_error(kind, error))?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width || height > limits.max_height {
        return Err(MediaError::TooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(MediaError::NoPixels {
            kind,
            width,
            height,
        });
    }
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc_bytes {
        return Err(MediaError::TooMuchMemory {
            kind,
            width,
            height,
            needed,
            limit: limits.max_alloc_bytes,
        });
    }
    Ok(())
}

/// Refuse a JPEG whose data stops before its end-of-image marker.
///
/// The JPEG decoder is lenient: it paints whatever a truncated file lacks
/// grey and reports success. A picture cut short hashes far from the whole
/// one, and the reference hashers' decoder refuses such a file, so it is
/// refused here too. The walk skips the header segments by their lengths
/// (an Exif thumbnail holds an end marker of its own) to the first scan;
/// inside entropy-coded data a 0xFF byte is always escaped, so the first
/// `FF D9` after that is the real end.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), MediaError> {
    let truncated = |message: &str| MediaError::Corrupt {
        kind: ImageKind::Jpeg,
        message: message.to_string(),
    };
    let mut at = 2; // past the start-of-image marker
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = match bytes.get(at..at + 2) {
            Some([0xFF, marker]) => *marker,
            Some(_) => return Err(truncated("expected a marker between header segments")),
            None => return Err(truncated("the data ends inside its headers (truncated)")),
        };
        at += 2;
        // Markers that stand alone, without a length.
        if matches!(marker, 0x01 | 0xD0..=0xD8) {
            continue;
        }
        if marker == 0xD9 {
            return Err(truncated("the image ends before any scan data"));
        }
        let length = match bytes.get(at..at + 2) {
            Some([high, low]) => usize::from(u16::from_be_bytes([*high, *low])),
            _ => return Err(truncated("the data ends inside its headers (truncated)")),
        };
        at += length;
        if marker == 0xDA {
            break;
        }
    }
    let scans = bytes.get(at..).unwrap_or_default();
    if scans.windows(2).any(|pair| pair == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(truncated(
            "the data ends before the end-of-image marker (truncated)",
        ))
    }
}

/// Decode the pixels, the decoder enforcing the same limits itself.
fn decode_pixels(
    kind: ImageKind,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<DecodedImage, MediaError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.as_image_format());
    reader.limits(decoder_limits(limits));
    let pixels = reader
        .decode()
        .map_err(|error| decoder_error(kind, error))?;
    Ok(DecodedImage { kind, pixels })
}

fn decoder_limits(limits: &ImageLimits) -> image::Limits {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    decoder_limits
}

/// Turn the decoder's error into ours, keeping its own words.
fn decoder_error(kind: ImageKind, error: ImageError) -> MediaError {
    match error {
        ImageError::Limits(limit) => MediaError::DecoderLimit {
            kind,
            message: limit.to_string(),
        },
        ImageError::Unsupported(unsupported) => MediaError::UnsupportedFeature {
            kind,
            message: unsupported.to_string(),
        },
        ImageError::Decoding(decoding) => MediaError::Corrupt {
            kind,
            // The decoder's own message, without the "Format error decoding
            // Jpeg:" wrapper that our message replaces.
            message: std::error::Error::source(&decoding)
                .map_or_else(|| decoding.to_string(), ToString::to_string),
        },
        // Reading past the end of the bytes: a truncated file.
        ImageError::IoError(io) => MediaError::Corrupt {
            kind,
            message: io.to_string(),
        },
        other => MediaError::Corrupt {
            kind,
            message: other.to_string(),
        },
    }
}

/// Run `decode`, turning a panic inside it into [`MediaError::DecoderPanicked`].
///
/// The workspace builds with the default `panic = "unwind"` in every
/// profile; were it switched to `abort`, this would no longer catch
/// anything and a decoder panic would end the process. The panic is still
/// reported by the process's panic hook (to stderr by default).
fn catching_panics<T>(
    kind: ImageKind,
    decode: impl FnOnce() -> Result<T, MediaError>,
) -> Result<T, MediaError> {
    // Nothing the closure touches outlives it except through its result,
    // so no broken invariant can be observed after a panic.
    panic::catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".to_string());
        Err(MediaError::DecoderPanicked { kind, message })
    })
}

#[cfg(test)]
mod tests {
    use image::DynamicImage;

    use super::*;
    use crate::media::test_images::{jpeg, photo, png, png_chunk, png_claiming};

    fn decode_default(bytes: &[u8]) -> Result<DecodedImage, MediaError> {
        decode(bytes, &ImageLimits::default())
    }

    fn small_png() -> Vec<u8> {
        png(&DynamicImage::ImageRgb8(photo(64, 48, 1)))
    }

    #[test]
    fn empty_bytes_are_refused() {
        assert_eq!(decode_default(&[]).err(), Some(MediaError::Empty));
    }

    #[test]
    fn bytes_over_the_limit_are_refused_unread() {
        let bytes = small_png();
        let limits = ImageLimits {
            max_bytes: bytes.len() - 1,
            ..ImageLimits::default()
        };
        let error = decode(&bytes, &limits).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "image is {} bytes; the limit is {} bytes",
                bytes.len(),
                bytes.len() - 1
            )
        );
        assert!(
            decode(
                &bytes,
                &ImageLimits {
                    max_bytes: bytes.len(),
                    ..limits
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn garbage_is_an_unknown_format_named_by_its_first_bytes() {
        let error = decode_default(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "image bytes are not a JPEG, PNG, GIF or WebP (first bytes 00 01 02 03 04 05 06 07)"
        );
        assert_eq!(
            decode_default(b"<svg").err().unwrap().to_string(),
            "image bytes are not a JPEG, PNG, GIF or WebP (first bytes 3c 73 76 67)"
        );
    }

    #[test]
    fn recognised_formats_that_are_not_accepted_are_refused_by_name() {
        for (bytes, format) in [
            (&b"BM\x36\x00\x00\x00\x00\x00"[..], "BMP"),
            (b"II*\x00\x08\x00\x00\x00", "TIFF"),
            (b"MM\x00*\x00\x00\x00\x08", "TIFF"),
            (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIF/HEIC"),
            (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
            (b"\xff\x0a\xfa\x7f", "JPEG XL"),
        ] {
            let error = decode_default(bytes).err().unwrap();
            assert_eq!(error, MediaError::UnsupportedFormat { format });
            assert_eq!(
                error.to_string(),
                format!(
                    "image is a {format}, which is not accepted (only JPEG, PNG, GIF and WebP are)"
                )
            );
        }
    }

    #[test]
    fn format_comes_from_magic_bytes() {
        assert_eq!(sniff_kind(&small_png()), Ok(ImageKind::Png));
        assert_eq!(
            sniff_kind(&jpeg(&photo(16, 16, 1), 80)),
            Ok(ImageKind::Jpeg)
        );
        assert_eq!(sniff_kind(b"GIF89a\x01\x00"), Ok(ImageKind::Gif));
        assert_eq!(
            sniff_kind(b"RIFF\x10\x00\x00\x00WEBPVP8 "),
            Ok(ImageKind::WebP)
        );
        // A RIFF that is not WebP (a WAV file) is not an image.
        assert!(matches!(
            sniff_kind(b"RIFF\x10\x00\x00\x00WAVEfmt "),
            Err(MediaError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn a_header_claiming_huge_sides_is_refused_before_decoding() {
        // The file is a few dozen bytes; decoding it would need 30 GB. It
        // is refused from the header, not by the decoder's own limits.
        let bytes = png_claiming(100_000, 100_000);
        assert!(bytes.len() < 100);
        let error = decode_default(&bytes).err().unwrap();
        assert_eq!(
            error,
            MediaError::TooLarge {
                width: 100_000,
                height: 100_000,
                max_width: 8192,
                max_height: 8192,
            }
        );
        assert_eq!(
            error.to_string(),
            "image is 100000x100000 pixels; the limit is 8192x8192"
        );
        // One side over is enough.
        assert!(matches!(
            decode_default(&png_claiming(10, 9000)),
            Err(MediaError::TooLarge { .. })
        ));
    }

    #[test]
    fn too_many_pixels_within_the_side_limits_are_refused() {
        let error = decode_default(&png_claiming(8000, 8000)).err().unwrap();
        assert_eq!(
            error.to_string(),
            "image is 8000x8000 = 64000000 pixels; the limit is 40000000 pixels"
        );
    }

    #[test]
    fn pixels_that_would_not_fit_in_memory_are_refused() {
        let limits = ImageLimits {
            max_alloc_bytes: 1_000_000,
            ..ImageLimits::default()
        };
        let error = decode(&png_claiming(1000, 1000), &limits).err().unwrap();
        assert_eq!(
            error.to_string(),
            "decoding this 1000x1000 PNG needs 3000000 bytes; the limit is 1000000 bytes"
        );
    }

    #[test]
    fn the_decoder_enforces_the_limits_itself() {
        // Past the header check (as if it had been bypassed), the decoder
        // still refuses an image over the limits it is handed.
        let bytes = small_png();
        let limits = ImageLimits {
            max_width: 32,
            ..ImageLimits::default()
        };
        assert!(matches!(
            decode_pixels(ImageKind::Png, &bytes, &limits),
            Err(MediaError::DecoderLimit {
                kind: ImageKind::Png,
                ..
            })
        ));
        let limits = ImageLimits {
            max_alloc_bytes: 1000,
            ..ImageLimits::default()
        };
        assert!(matches!(
            decode_pixels(ImageKind::Png, &bytes, &limits),
            Err(MediaError::DecoderLimit { .. })
        ));
    }

    #[test]
    fn a_truncated_jpeg_is_corrupt() {
        let bytes = jpeg(&photo(256, 256, 2), 85);
        assert!(decode_default(&bytes).is_ok());
        for cut in [bytes.len() - 2, bytes.len() / 2, 300, 40, 3] {
            let error = decode_default(&bytes[..cut]).err();
            assert!(
                matches!(
                    error,
                    Some(MediaError::Corrupt {
                        kind: ImageKind::Jpeg,
                        ..
                    })
                ),
                "cut at {cut}: {error:?}"
            );
        }
        let message = decode_default(&bytes[..bytes.len() / 2])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            message,
            "JPEG data is corrupt: the data ends before the end-of-image marker (truncated)"
        );
    }

    #[test]
    fn a_jpeg_with_trailing_bytes_still_decodes() {
        let mut bytes = jpeg(&photo(64, 64, 3), 85);
        bytes.extend_from_slice(b"trailing data some cameras append");
        assert!(decode_default(&bytes).is_ok());
    }

    #[test]
    fn a_truncated_or_damaged_png_is_corrupt() {
        let bytes = small_png();
        for cut in [bytes.len() / 2, 40] {
            let error = decode_default(&bytes[..cut]).err();
            assert!(
                matches!(
                    error,
                    Some(MediaError::Corrupt {
                        kind: ImageKind::Png,
                        ..
                    })
                ),
                "cut at {cut}: {error:?}"
            );
        }
        // A data chunk with a valid checksum over data that is not zlib.
        let mut damaged = bytes[..33].to_vec();
        damaged.extend(png_chunk(b"IDAT", &[0xDE; 64]));
        damaged.extend(png_chunk(b"IEND", &[]));
        let error = decode_default(&damaged).err().unwrap();
        assert!(
            error.to_string().starts_with("PNG data is corrupt: "),
            "{error}"
        );
    }

    #[test]
    fn a_header_with_no_pixels_is_refused() {
        let error = decode_default(&png_claiming(0, 10)).err();
        assert!(
            matches!(
                error,
                Some(MediaError::NoPixels { .. } | MediaError::Corrupt { .. })
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_decoder_panic_becomes_an_error() {
        let result: Result<(), MediaError> = catching_panics(ImageKind::Gif, || {
            panic!("index out of bounds in a decoder")
        });
        assert_eq!(
            result.err().unwrap().to_string(),
            "GIF decoder failed internally (panicked): index out of bounds in a decoder"
        );
        let result: Result<(), MediaError> =
            catching_panics(ImageKind::Png, || std::panic::panic_any(42u8));
        assert!(matches!(result, Err(MediaError::DecoderPanicked { .. })));
    }

    #[test]
    fn luma_follows_pdq_weights_and_ignores_alpha() {
        let mut rgba = image::RgbaImage::new(3, 1);
        rgba.put_pixel(0, 0, image::Rgba([255, 0, 0, 255]));
        rgba.put_pixel(1, 0, image::Rgba([0, 255, 0, 0]));
        rgba.put_pixel(2, 0, image::Rgba([10, 20, 200, 7]));
        let image = decode_default(&png(&DynamicImage::ImageRgba8(rgba))).unwrap();
        let luma = image.to_luma();
        let expected = [
            0.299 * 255.0,
            0.587 * 255.0,
            0.299 * 10.0 + 0.587 * 20.0 + 0.114 * 200.0,
        ];
        for (got, want) in luma.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{got} against {want}");
        }

        let grey = image::GrayImage::from_raw(4, 1, vec![0, 17, 128, 255]).unwrap();
        let image = decode_default(&png(&DynamicImage::ImageLuma8(grey))).unwrap();
        assert_eq!(image.kind(), ImageKind::Png);
        assert_eq!(image.to_luma(), vec![0.0, 17.0, 128.0, 255.0]);
    }

    #[test]
    fn sixteen_bit_pngs_are_read_at_eight_bits() {
        let deep =
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![0u16, 65535]).unwrap();
        let image = decode_default(&png(&DynamicImage::ImageLuma16(deep))).unwrap();
        assert_eq!(image.to_luma(), vec![0.0, 255.0]);
    }

    #[test]
    fn only_wanted_rows_are_converted() {
        let image = decode_default(&small_png()).unwrap();
        let mut seen = Vec::new();
        image.luma_rows(
            |y| y % 10 == 0,
            |y, row| {
                assert_eq!(row.len(), 64);
                seen.push(y);
            },
        );
        assert_eq!(seen, vec![0, 10, 20, 30, 40]);
    }
}
