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
