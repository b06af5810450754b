//! Media: PDQ hashes of untrusted image bytes, for matching profile photos
//! and group icons against banks of hashes of known abuse imagery.
//!
//! The bytes come from whoever uploaded the picture, so an image decoder is
//! an attack surface here: [`decode`] refuses, before decoding a pixel,
//! anything over [`ImageLimits`] (bytes, sides, pixels, memory) and any
//! format but JPEG, PNG, GIF and WebP as their magic bytes say; it decodes
//! with pure-Rust decoders that enforce the same limits themselves, and
//! turns a decoder panic into an error. Every refusal is a [`MediaError`]
//! that says exactly what was wrong.
//!
//! [`pdq`] computes Meta's PDQ hash and its quality from the decoded
//! luminance, without a full-size working buffer, so that the engine can
//! hash a picture itself rather than trust a hash it is sent. A hash of
//! quality [`LOW_QUALITY`] or less is not to be matched
//! ([`PdqHash::is_matchable`]).
//!
//! * [`decode`]: bytes to pixels, within limits.
//! * [`pdq`]: pixels to a PDQ hash.
//! * [`attached`]: an image sent inside an event, hashed at intake and
//!   dropped.

pub mod attached;
pub mod decode;
pub mod pdq;

pub use attached::{AttachedImageError, hash_attached_image};
pub use decode::{DecodedImage, ImageKind, ImageLimits, MediaError, decode, sniff_kind};
pub use pdq::{LOW_QUALITY, PdqHash, PdqHasher, pdq_from_luma};

/// The PDQ hash of an image given as its encoded bytes, decoded within
/// `limits`.
pub fn hash_image(bytes: &[u8], limits: &ImageLimits) -> Result<PdqHash, MediaError> {
    decode(bytes, limits).map(|image| hash_decoded(&image))
}

/// The PDQ hash of an image already decoded, streaming its luminance one
/// row at a time into the hasher.
pub fn hash_decoded(image: &DecodedImage) -> PdqHash {
    let mut hasher = PdqHasher::new(image.width() as usize, image.height() as usize);
    // Ask which rows are wanted up front, so that the sink alone borrows
    // the hasher while rows stream in.
    let wanted_rows: Vec<bool> = (0..image.height() as usize)
        .map(|y| hasher.wants_row(y))
        .collect();
    image.luma_rows(
        |y| wanted_rows.get(y).copied().unwrap_or(false),
        |y, row| hasher.add_row(y, row),
    );
    hasher.finish()
}

/// Pictures made up for the tests: deterministic, with the smooth regions,
/// edges and texture of a photo, and the encoders to turn them into bytes.
#[cfg(test)]
pub(crate) mod test_images {
    use image::{DynamicImage, ImageEncoder, RgbImage};

    /// A small deterministic generator (SplitMix64), so that the pictures
    /// are the same on every run and machine.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `[0, 1)`.
        pub fn unit(&mut self) -> f32 {
            (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// A `width` x `height` picture: a two-colour gradient, a dozen
    /// overlapping soft-edged blobs and boxes, and a little grain.
    pub fn photo(width: u32, height: u32, seed: u64) -> RgbImage {
        let mut rng = Rng::new(seed);
        let colour = |rng: &mut Rng| [rng.unit() * 255.0, rng.unit() * 255.0, rng.unit() * 255.0];
        let (from, to) = (colour(&mut rng), colour(&mut rng));
        let angle = rng.unit() * std::f32::consts::TAU;
        let (w, h) = (width as f32, height as f32);
        let mut pixels = vec![[0.0f32; 3]; (width * height) as usize];
        for (index, pixel) in pixels.iter_mut().enumerate() {
            let (x, y) = (
                (index as u32 % width) as f32 / w,
                (index as u32 / width) as f32 / h,
            );
            let t = ((x - 0.5) * angle.cos() + (y - 0.5) * angle.sin() + 0.5).clamp(0.0, 1.0);
            for channel in 0..3 {
                pixel[channel] = from[channel] * (1.0 - t) + to[channel] * t;
            }
        }
        for shape in 0..12 {
            let fill = colour(&mut rng);
            let (cx, cy) = (rng.unit(), rng.unit());
            let (rx, ry) = (0.05 + rng.unit() * 0.25, 0.05 + rng.unit() * 0.25);
            let is_box = shape % 3 == 0;
            for (index, pixel) in pixels.iter_mut().enumerate() {
                let x = ((index as u32 % width) as f32 / w - cx) / rx;
                let y = ((index as u32 / width) as f32 / h - cy) / ry;
                let reach = if is_box {
                    x.abs().max(y.abs())
                } else {
                    (x * x + y * y).sqrt()
                };
                // Opaque inside, fading over the last tenth of the radius.
                let cover = ((1.0 - reach) * 10.0).clamp(0.0, 1.0) * 0.85;
                for (value, target) in pixel.iter_mut().zip(fill) {
                    *value += (target - *value) * cover;
                }
            }
        }
        let mut image = RgbImage::new(width, height);
        for (out, pixel) in image.pixels_mut().zip(&pixels) {
            for (out, value) in out.0.iter_mut().zip(pixel) {
                let grain = (rng.unit() - 0.5) * 12.0;
                *out = (value + grain).round().clamp(0.0, 255.0) as u8;
            }
        }
        image
    }

    pub fn png(image: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(
                image.as_bytes(),
                image.width(),
                image.height(),
                image.color().into(),
            )
            .expect("encoding a test PNG");
        bytes
    }

    pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encoding a test JPEG");
        bytes
    }

    /// A PNG chunk with its CRC.
    pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut chunk = Vec::with_capacity(data.len() + 12);
        chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
        chunk.extend_from_slice(kind);
        chunk.extend_from_slice(data);
        let crc = crc32(&chunk[4..]);
        chunk.extend_from_slice(&crc.to_be_bytes());
        chunk
    }

    /// A well-formed PNG whose header claims `width` x `height` 8-bit RGB
    /// pixels but whose one data chunk holds next to nothing.
    pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        // Bit depth 8, colour type 2 (RGB), deflate, adaptive filters, no
        // interlace.
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend(png_chunk(b"IHDR", &header));
        // A zlib stream of one empty stored block.
        bytes.extend(png_chunk(
            b"IDAT",
            &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
        ));
        bytes.extend(png_chunk(b"IEND", &[]));
        bytes
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks carry.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
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
}

#[cfg(test)]
mod tests;
