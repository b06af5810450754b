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

#[cfg(test)]
mod tests;
