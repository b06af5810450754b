//! Images that arrive inside an event: hashed at intake, then dropped.
//!
//! A media event may carry the image itself (`image`, bytes) instead of its
//! PDQ hash. The engine decodes it within the configured limits, and the
//! event goes on with `pdq_hash` and `pdq_quality` (what rules read), the
//! SHA-256 and MD5 of the bytes (what a clearing-house report names), and
//! the picture's size, in place of the bytes. The bytes are never kept: a
//! decision holds its event whole, and an engine that logged imagery of
//! abuse would be holding it.

use sha2::Digest as _;

use super::{ImageLimits, MediaError, hash_decoded};
use crate::clearinghouse::media_attributes::{IMAGE_MD5, IMAGE_SHA256, PDQ_HASH, PDQ_QUALITY};
use crate::event::{Event, MAX_ATTRIBUTES, Value};

/// The attribute an event carries image bytes in.
pub const IMAGE: &str = "image";
/// The attributes the engine adds with the picture's size.
pub const IMAGE_WIDTH: &str = "image_width";
/// See [`IMAGE_WIDTH`].
pub const IMAGE_HEIGHT: &str = "image_height";

/// What an image is replaced by.
const DERIVED: [&str; 6] = [
    PDQ_HASH,
    PDQ_QUALITY,
    IMAGE_SHA256,
    IMAGE_MD5,
    IMAGE_WIDTH,
    IMAGE_HEIGHT,
];

/// Why an event's image could not be used: the attribute at fault and what
/// was wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attributes.{attribute}: {message}")]
pub struct AttachedImageError {
    /// The attribute.
    pub attribute: &'static str,
    /// What was wrong.
    pub message: String,
}

/// Replace an event's `image` with its hashes; an event without one is
/// left as it is. Refused, changing nothing, if the image is not bytes,
/// the event also carries a hash of its own (which would the rules
/// believe?), or the bytes are not an image within `limits`.
pub fn hash_attached_image(
    event: &mut Event,
    limits: &ImageLimits,
) -> Result<(), AttachedImageError> {
    let Some(position) = event.attributes.iter().position(|(name, _)| name == IMAGE) else {
        return Ok(());
    };
    let refuse =
        |attribute: &'static str, message: String| AttachedImageError { attribute, message };
    let Value::Bytes(bytes) = &event.attributes[position].1 else {
        return Err(refuse(
            IMAGE,
            "is not bytes: an image is sent as its encoded bytes".into(),
        ));
    };
    for derived in DERIVED {
        if event.attribute(derived).is_some() {
            return Err(refuse(
                derived,
                format!("is computed from `{IMAGE}`; send one or the other, not both"),
            ));
        }
    }
    // Checked before decoding, and here rather than by the pipeline after:
    // the client kept to the limit, and only this says why it is crossed.
    let after = event.attributes.len() - 1 + DERIVED.len();
    if after > MAX_ATTRIBUTES {
        return Err(refuse(
            IMAGE,
            format!(
                "is replaced by {} attributes (its hashes and size), which would give the event \
                 {after} attributes, over the limit of {MAX_ATTRIBUTES}",
                DERIVED.len()
            ),
        ));
    }
    let image =
        super::decode(bytes, limits).map_err(|e: MediaError| refuse(IMAGE, e.to_string()))?;
    let pdq = hash_decoded(&image);
    let sha256 = hex::encode(sha2::Sha256::digest(bytes));
    let md5 = hex::encode(md5::Md5::digest(bytes));
    let (width, height) = (image.width(), image.height());
    event.attributes.remove(position);
    event.attributes.extend([
        (PDQ_HASH.to_string(), Value::Bytes(pdq.hash.to_vec())),
        (PDQ_QUALITY.to_string(), Value::Int(i64::from(pdq.quality))),
        (IMAGE_SHA256.to_string(), Value::Text(sha256)),
        (IMAGE_MD5.to_string(), Value::Text(md5)),
        (IMAGE_WIDTH.to_string(), Value::Int(i64::from(width))),
        (IMAGE_HEIGHT.to_string(), Value::Int(i64::from(height))),
    ]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use image::DynamicImage;

    use super::*;
    use crate::event::Entity;
    use crate::media::test_images::{photo, png};

    fn with_attributes(count: usize) -> Event {
        let mut event = Event::new("e1", "group.icon_changed", 1_000, Entity::group("g"));
        for i in 0..count - 1 {
            event = event.with(format!("a{i}"), Value::Int(1));
        }
        event.with(
            IMAGE,
            Value::Bytes(png(&DynamicImage::ImageRgb8(photo(16, 16, 1)))),
        )
    }

    #[test]
    fn an_image_that_would_push_the_event_over_the_attribute_limit_is_refused() {
        let limits = ImageLimits::default();
        let mut fits = with_attributes(MAX_ATTRIBUTES - 5);
        hash_attached_image(&mut fits, &limits).unwrap();
        assert_eq!(fits.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(fits.validate(), Ok(()));

        let mut over = with_attributes(MAX_ATTRIBUTES - 4);
        let before = over.clone();
        let error = hash_attached_image(&mut over, &limits).unwrap_err();
        assert_eq!(error.attribute, IMAGE);
        assert!(
            error
                .message
                .contains("257 attributes, over the limit of 256"),
            "{error}"
        );
        assert_eq!(over, before);
    }
}
