//! Target (d): image bytes sent in an event, decoded under `ImageLimits`
//! and hashed with PDQ: arbitrary bytes, and real PNG, JPEG, GIF and WebP
//! files mutated (headers claiming other sizes, chunks cut or repeated).

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use enforcer::media::{
    ImageKind, ImageLimits, MediaError, decode, hash_decoded, pdq_from_luma, sniff_kind,
};
use image::{DynamicImage, ImageFormat, RgbImage};
use proptest::prelude::*;

use crate::budget::fuzz;
use crate::mutate::mutated;

/// A small picture with edges and gradients, so that every decoder has
/// real work to do.
fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        let edge = if (x / 4 + y / 4) % 2 == 0 { 200 } else { 30 };
        image::Rgb([(x * 7) as u8, (y * 11) as u8, edge])
    }))
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

/// A 16 x 12 PNG.
pub fn tiny_png() -> Vec<u8> {
    encoded(&picture(16, 12), ImageFormat::Png)
}

/// Real files of every accepted format (and colour types the decoders
/// treat apart), plus a PNG header claiming a huge image.
fn seeds() -> Vec<Vec<u8>> {
    let rgb = picture(24, 20);
    let mut seeds = vec![
        encoded(&rgb, ImageFormat::Png),
        encoded(
            &DynamicImage::ImageLuma16(rgb.to_luma16()),
            ImageFormat::Png,
        ),
        encoded(&DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::Png),
        encoded(&rgb, ImageFormat::Jpeg),
        encoded(&DynamicImage::ImageLuma8(rgb.to_luma8()), ImageFormat::Jpeg),
        encoded(&DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::Gif),
        encoded(&rgb, ImageFormat::WebP),
    ];
    // A signature and IHDR for 100000 x 100000, and nothing after.
    let mut huge = seeds[0][..33].to_vec();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    seeds.push(huge);
    seeds
}

/// Limits that mutated headers cross often, and the defaults.
fn limits() -> impl Strategy<Value = ImageLimits> {
    prop_oneof![
        Just(ImageLimits::default()),
        Just(ImageLimits {
            max_bytes: 4096,
            max_width: 64,
            max_height: 64,
            max_pixels: 2048,
            max_alloc_bytes: 64 * 1024,
        }),
    ]
}

fn image_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated(seeds(), 8),
        // Magic bytes followed by noise.
        1 => (0usize..4, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(kind, noise)| {
            let magic: &[u8] = match kind {
                0 => &[0xFF, 0xD8, 0xFF],
                1 => b"\x89PNG\r\n\x1a\n",
                2 => b"GIF89a",
                _ => b"RIFF\0\0\0\0WEBPVP8 ",
            };
            [magic, &noise].concat()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Decoder panics caught and reported as errors (a bug in the decoder, not
/// a crash of the engine): counted, to be reported.
static CAUGHT_PANICS: AtomicU64 = AtomicU64::new(0);

fn check_image((bytes, limits): (Vec<u8>, ImageLimits)) -> Result<(), TestCaseError> {
    let sniffed = sniff_kind(&bytes);
    match decode(&bytes, &limits) {
        Err(error) => {
            let message = error.to_string();
            prop_assert!(!message.is_empty());
            match &error {
                MediaError::Empty => prop_assert!(bytes.is_empty()),
                MediaError::TooManyBytes { len, limit } => {
                    prop_assert!(*len == bytes.len() && *len > *limit && *limit == limits.max_bytes)
                }
                MediaError::UnknownFormat { .. } | MediaError::UnsupportedFormat { .. } => {
                    prop_assert!(sniffed.is_err(), "{message}")
                }
                MediaError::TooLarge { width, height, .. } => prop_assert!(
                    *width > limits.max_width || *height > limits.max_height,
                    "{message}"
                ),
                MediaError::TooManyPixels { pixels, limit, .. } => {
                    prop_assert!(*pixels > *limit, "{message}")
                }
                MediaError::NoPixels { width, height, .. } => {
                    prop_assert!(*width == 0 || *height == 0, "{message}")
                }
                MediaError::TooMuchMemory { needed, limit, .. } => {
                    prop_assert!(*needed > *limit, "{message}")
                }
                MediaError::DecoderPanicked { .. } => {
                    CAUGHT_PANICS.fetch_add(1, Ordering::Relaxed);
                }
                MediaError::DecoderLimit { message: words, .. }
                | MediaError::Corrupt { message: words, .. }
                | MediaError::UnsupportedFeature { message: words, .. } => {
                    prop_assert!(
                        !words.trim().is_empty(),
                        "{message}: the decoder said nothing"
                    )
                }
            }
            // An error about a format's data names the format the magic
            // bytes said.
            let about_the_data = matches!(
                error,
                MediaError::NoPixels { .. }
                    | MediaError::TooMuchMemory { .. }
                    | MediaError::DecoderLimit { .. }
                    | MediaError::Corrupt { .. }
                    | MediaError::UnsupportedFeature { .. }
                    | MediaError::DecoderPanicked { .. }
            );
            if about_the_data {
                let kind =
                    sniffed.map_err(|e| TestCaseError::fail(format!("{message}, yet {e}")))?;
                prop_assert!(
                    message.contains(kind.name()),
                    "{message} does not name {kind}"
                );
            }
        }
        Ok(image) => {
            let kind: ImageKind = sniffed
                .map_err(|e| TestCaseError::fail(format!("decoded unsniffed bytes: {e}")))?;
            prop_assert_eq!(image.kind(), kind);
            let (width, height) = (image.width(), image.height());
            prop_assert!(width > 0 && height > 0);
            prop_assert!(width <= limits.max_width && height <= limits.max_height);
            prop_assert!(u64::from(width) * u64::from(height) <= limits.max_pixels);
            // Streamed hashing and hashing the whole luminance agree.
            let streamed = hash_decoded(&image);
            let luma = image.to_luma();
            prop_assert_eq!(luma.len(), width as usize * height as usize);
            prop_assert!(luma.iter().all(|l| (0.0..=255.0).contains(l)));
            let whole = pdq_from_luma(&luma, width as usize, height as usize).expect("sized");
            prop_assert_eq!(streamed, whole);
            prop_assert!(streamed.quality <= 100);
        }
    }
    Ok(())
}

#[test]
fn images_decode_within_limits_or_are_refused_precisely() {
    // The seeds decode, so the mutations start from real files.
    for (index, seed) in seeds().iter().enumerate().take(7) {
        decode(seed, &ImageLimits::default()).unwrap_or_else(|e| panic!("seed {index}: {e}"));
    }
    let cases = fuzz("images", (image_bytes(), limits()), check_image);
    assert!(cases >= 64);
    let caught = CAUGHT_PANICS.load(Ordering::Relaxed);
    if caught > 0 {
        eprintln!("fuzz images: {caught} decoder panics caught and refused as errors");
    }
}
