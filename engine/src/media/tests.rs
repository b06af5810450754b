//! Hashing and refusing images, on small fixtures made here: a committed
//! picture with a reference hash, re-encoded and resized copies of it, a
//! flat picture, and hostile bytes of every kind the decoder must refuse.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};

use super::*;

/// A 320x200 picture of shapes on a gradient, drawn for these tests.
const SHAPES: &[u8] = include_bytes!("testdata/shapes-320x200.png");

/// The PDQ hash and quality of `SHAPES` by Meta's own C++ implementation,
/// through the `pdqhash` 0.2.8 Python bindings:
/// `pdqhash.compute(numpy.asarray(Image.open(path).convert("RGB")))`, the
/// 256 bits read as one big-endian number in hex. (The same call gives the
/// ThreatExchange reference hash of `bridge-mods/aaa-orig.jpg`.)
const SHAPES_REFERENCE: &str = "72660e2f3399cce6331628e3d19926e783183ee64e993327cc98b3563366cd99";
const SHAPES_REFERENCE_QUALITY: u8 = 77;

fn limits() -> ImageLimits {
    ImageLimits::default()
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn jpeg(image: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image.to_rgb8())
        .expect("encodes");
    out
}

fn shapes() -> DynamicImage {
    image::load_from_memory(SHAPES).expect("the fixture decodes")
}

fn reference() -> [u8; 32] {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(SHAPES_REFERENCE, &mut hash).unwrap();
    hash
}

#[test]
fn matches_the_reference_implementation() {
    let ours = hash_image(SHAPES, &limits()).unwrap();
    let distance = crate::banks::hamming(&ours.hash, &reference());
    assert!(distance <= 4, "{distance} bits from the reference: {ours}");
    assert!(
        ours.quality.abs_diff(SHAPES_REFERENCE_QUALITY) <= 2,
        "quality {} against {SHAPES_REFERENCE_QUALITY}",
        ours.quality
    );
    assert!(ours.is_matchable());
    assert_eq!(ours.to_string().len(), 64);
}

#[test]
fn copies_stay_near_the_original() {
    let original = hash_image(SHAPES, &limits()).unwrap();
    let picture = shapes();
    let copies = [
        ("JPEG at quality 90", jpeg(&picture, 90)),
        ("JPEG at quality 40", jpeg(&picture, 40)),
        (
            "half size, PNG",
            encode(
                &picture.resize_exact(160, 100, image::imageops::FilterType::Triangle),
                ImageFormat::Png,
            ),
        ),
        (
            "a quarter size, JPEG",
            jpeg(
                &picture.resize_exact(80, 50, image::imageops::FilterType::Triangle),
                75,
            ),
        ),
        ("GIF", encode(&picture, ImageFormat::Gif)),
        ("WebP (lossless)", encode(&picture, ImageFormat::WebP)),
    ];
    for (what, bytes) in copies {
        let copy = hash_image(&bytes, &limits()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let distance = copy.distance(&original);
        assert!(distance <= 31, "{what}: {distance} bits from the original");
    }
}

#[test]
fn different_pictures_are_far_apart() {
    let original = hash_image(SHAPES, &limits()).unwrap();
    let picture = shapes();
    let mut noise = RgbImage::new(256, 256);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for pixel in noise.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        *pixel = image::Rgb([r, g, b]);
    }
    let others = [
        ("upside down", encode(&picture.flipv(), ImageFormat::Png)),
        ("mirrored", encode(&picture.fliph(), ImageFormat::Png)),
        (
            "noise",
            encode(&DynamicImage::ImageRgb8(noise), ImageFormat::Png),
        ),
    ];
    for (what, bytes) in others {
        let distance = hash_image(&bytes, &limits()).unwrap().distance(&original);
        assert!(
            distance > 31,
            "{what}: only {distance} bits from the original"
        );
    }
}

#[test]
fn flat_and_tiny_pictures_are_not_matchable() {
    let grey = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 200, image::Rgb([128; 3])));
    let flat = hash_image(&encode(&grey, ImageFormat::Png), &limits()).unwrap();
    assert!(flat.quality <= LOW_QUALITY, "quality {}", flat.quality);
    assert!(!flat.is_matchable());

    let tiny = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 3, image::Rgb([9, 200, 40])));
    let tiny = hash_image(&encode(&tiny, ImageFormat::Png), &limits()).unwrap();
    assert_eq!((tiny.hash, tiny.quality), ([0; 32], 0));
}

#[test]
fn the_same_bytes_give_the_same_hash() {
    let first = hash_image(SHAPES, &limits()).unwrap();
    let second = hash_image(SHAPES, &limits()).unwrap();
    assert_eq!(first, second);
    // Hashing from the decoded luminance gives the same hash as streaming.
    let decoded = decode(SHAPES, &limits()).unwrap();
    let whole = pdq_from_luma(&decoded.to_luma(), 320, 200).unwrap();
    assert_eq!(whole, first);
    assert_eq!(pdq_from_luma(&[0.0; 10], 3, 3), None);
}

/// A PNG whose header claims `width` x `height` and whose data is a few
/// bytes: what a decompression bomb looks like to a decoder that trusts it.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut header = b"IHDR".to_vec();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (length, chunk) in [
        (13u32, header),
        (0, b"IDAT".to_vec()),
        (0, b"IEND".to_vec()),
    ] {
        png.extend(length.to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

/// CRC-32 as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn hostile_bytes_are_refused_before_decoding() {
    let huge = hash_image(&png_header(100_000, 100_000), &limits()).unwrap_err();
    assert_eq!(
        huge.to_string(),
        "image is 100000x100000 pixels; the limit is 8192x8192"
    );
    let strict = ImageLimits {
        max_pixels: 10_000,
        ..limits()
    };
    let many = hash_image(&png_header(200, 200), &strict).unwrap_err();
    assert!(
        matches!(many, MediaError::TooManyPixels { pixels: 40_000, .. }),
        "{many}"
    );
    let small = ImageLimits {
        max_bytes: 100,
        ..limits()
    };
    assert_eq!(
        hash_image(SHAPES, &small).unwrap_err(),
        MediaError::TooManyBytes {
            len: SHAPES.len(),
            limit: 100
        }
    );
    assert_eq!(hash_image(&[], &limits()).unwrap_err(), MediaError::Empty);

    let garbage = hash_image(b"\x00\x01\x02\x03 not an image", &limits()).unwrap_err();
    assert_eq!(
        garbage.to_string(),
        "image bytes are not a JPEG, PNG, GIF or WebP (first bytes 00 01 02 03 20 6e 6f 74)"
    );
    // Formats the engine does not decode are named, not guessed at.
    for (magic, format) in [
        (&b"BM\x36\x00\x0c\x00"[..], "BMP"),
        (&b"II*\x00\x08\x00\x00\x00"[..], "TIFF"),
        (&b"\x00\x00\x00\x18ftypheic"[..], "HEIF/HEIC"),
    ] {
        let mut bytes = magic.to_vec();
        bytes.resize(64, 0);
        assert_eq!(
            hash_image(&bytes, &limits()).unwrap_err(),
            MediaError::UnsupportedFormat { format }
        );
    }

    // A JPEG cut inside its headers does not decode. (One cut inside its
    // scan decodes what is there, grey below, as browsers show it.)
    let whole = jpeg(&shapes(), 90);
    let truncated = hash_image(&whole[..120], &limits()).unwrap_err();
    assert!(
        matches!(truncated, MediaError::Corrupt { .. }),
        "a truncated JPEG: {truncated:?}"
    );
    let mut scrambled = SHAPES.to_vec();
    for byte in scrambled.iter_mut().skip(60).step_by(7) {
        *byte ^= 0x5a;
    }
    let scrambled = hash_image(&scrambled, &limits()).unwrap_err();
    assert!(
        matches!(scrambled, MediaError::Corrupt { .. }),
        "a PNG with damaged data: {scrambled:?}"
    );
}
