//! The PDQ perceptual hash of a luminance image, and its quality.
//!
//! PDQ (Meta's published image hash, the one hash banks of known abuse
//! imagery are shared in) works on luminance:
//!
//! 1. blur with a tent filter: two passes of a box filter along each axis
//!    (Jarosz's construction), the box `ceil(side / 128)` pixels wide, so
//!    that each of 64 samples along an axis sees its 1/64 of the picture;
//! 2. decimate to 64 x 64 by taking the blurred pixel nearest the centre of
//!    each of the 64 x 64 cells;
//! 3. score the quality from the 64 x 64 block's gradients;
//! 4. take the 2-D DCT-II of the block and keep frequencies 1..=16 along each
//!    axis (the DC term and the highest frequencies are dropped);
//! 5. set each of the 256 bits where that coefficient exceeds the median of
//!    the 256.
//!
//! Blurring and decimating are both linear and separable, so instead of
//! blurring the whole picture (four passes over a full-size float buffer)
//! this computes only the 64 x 64 samples that decimation keeps: each is a
//! weighted sum over a small window, with the tent's weights (edges
//! included) worked out once per axis. The result is the same numbers up
//! to float rounding, and no full-size buffer is ever allocated: rows are
//! fed in one at a time ([`PdqHasher`]), so a decoded image can be hashed
//! straight from its pixels.

use std::fmt;
use std::sync::OnceLock;

/// A hash of this quality or less is not matched against banks: its picture
/// has too little structure (flat, blank or nearly so) for its bits to mean
/// anything, and such hashes collide with each other. This is the rule
/// Meta's Hasher-Matcher-Actioner applies, and the one the
/// `known-hash-match` rule applies to the `pdq_quality` it is sent.
pub const LOW_QUALITY: u8 = 49;

/// The smallest side PDQ hashes. Narrower images get the all-zero hash of
/// quality 0, as in the reference implementation.
pub const MIN_HASHABLE_SIDE: usize = 5;

/// Bytes in a hash.
pub const HASH_BYTES: usize = 32;

/// Side of the decimated block the DCT reads.
const BLOCK: usize = 64;

/// Frequencies kept along each axis (1..=16).
const FREQUENCIES: usize = 16;

/// A PDQ hash and its quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdqHash {
    /// The 256 bits, in the order of the standard 64-hex-digit form: byte 0
    /// is the first two hex digits, so `hex::encode(hash)` is the string the
    /// reference tools print and hash banks store.
    pub hash: [u8; HASH_BYTES],
    /// 0 to 100: how much gradient the picture has. See [`LOW_QUALITY`].
    pub quality: u8,
}

impl PdqHash {
    /// Whether the hash is good enough to match: its quality is above
    /// [`LOW_QUALITY`].
    pub fn is_matchable(&self) -> bool {
        self.quality > LOW_QUALITY
    }

    /// Hamming distance in bits between the two hashes (quality aside).
    pub fn distance(&self, other: &PdqHash) -> u32 {
        crate::banks::hamming(&self.hash, &other.hash)
    }
}

impl fmt::Display for PdqHash {
    /// The standard 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.hash))
    }
}

/// The PDQ hash of a `width` x `height` luminance image in row-major order
/// (luma as PDQ defines it: `0.299 R + 0.587 G + 0.114 B` on 0..=255).
/// `None` if `luma` does not hold exactly `width * height` values.
pub fn pdq_from_luma(luma: &[f32], width: usize, height: usize) -> Option<PdqHash> {
    if width.checked_mul(height)? != luma.len() {
        return None;
    }
    let mut hasher = PdqHasher::new(width, height);
    if width > 0 {
        for (y, row) in luma.chunks_exact(width).enumerate() {
            if hasher.wants_row(y) {
                hasher.add_row(y, row);
            }
        }
    }
    Some(hasher.finish())
}

/// Builds a PDQ hash from luminance rows fed one at a time, in any order,
/// holding only the 64 x 64 block being accumulated.
///
/// Feed every row for which [`wants_row`](Self::wants_row) is true (others
/// are ignored: no output sample reads them), then call
/// [`finish`](Self::finish).
pub struct PdqHasher {
    width: usize,
    height: usize,
    /// How the 64 block columns read a row.
    across: AxisTaps,
    /// How the 64 block rows read the image's rows.
    down: AxisTaps,
    /// The blurred, decimated block, accumulated row by row.
    block: Box<[[f64; BLOCK]; BLOCK]>,
}

impl PdqHasher {
    /// A hasher for a `width` x `height` image.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            across: AxisTaps::new(width),
            down: AxisTaps::new(height),
            block: Box::new([[0.0; BLOCK]; BLOCK]),
        }
    }

    fn too_small(&self) -> bool {
        self.width < MIN_HASHABLE_SIDE || self.height < MIN_HASHABLE_SIDE
    }

    /// Whether row `y` contributes to the hash.
    pub fn wants_row(&self, y: usize) -> bool {
        !self.too_small() && self.down.spans.iter().any(|span| span.covers(y))
    }

    /// Add row `y`'s `width` luminance values. A row of the wrong length,
    /// or one out of range, is ignored where it falls short.
    pub fn add_row(&mut self, y: usize, luma_row: &[f32]) {
        if self.too_small() {
            return;
        }
        let across_row = self.across.sample(luma_row);
        for (block_row, span) in self.block.iter_mut().zip(&self.down.spans) {
            if let Some(weight) = self.down.weight(span, y) {
                let weight = f64::from(weight);
                for (cell, value) in block_row.iter_mut().zip(&across_row) {
                    *cell += weight * f64::from(*value);
                }
            }
        }
    }

    /// The hash of the rows fed.
    pub fn finish(self) -> PdqHash {
        if self.too_small() {
            return PdqHash {
                hash: [0; HASH_BYTES],
                quality: 0,
            };
        }
        // The reference keeps the block in single precision; so does this,
        // so that the quality's truncations fall the same way.
        let block = self.block.map(|row| row.map(|value| value as f32));
        let quality = quality_of(&block);
        let coefficients = dct_16_of_64(&block);
        PdqHash {
            hash: bits_above_median(&coefficients),
            quality,
        }
    }
}

/// The box filter's width along a side of `length` pixels: a 64th of the
/// side, halved because the filter runs twice, rounded up.
fn box_width(length: usize) -> usize {
    length.div_ceil(2 * BLOCK).max(1)
}

/// How far a box of `width` reaches before and after its centre. An even
/// box reaches one further after than before, as in the reference.
fn box_reach(width: usize) -> (usize, usize) {
    let after = width / 2;
    (width - 1 - after, after)
}

/// The pixel the `index`-th of 64 samples along a side of `length` takes:
/// the one under the centre of its cell.
fn decimation_centre(index: usize, length: usize) -> usize {
    let centre = ((index as f64 + 0.5) * length as f64 / BLOCK as f64) as usize;
    centre.min(length.saturating_sub(1))
}

/// One output sample's window of input pixels.
#[derive(Clone, Copy, Default)]
struct Span {
    first: usize,
    len: usize,
    /// Where its weights start in [`AxisTaps::weights`].
    offset: usize,
}

impl Span {
    fn covers(&self, index: usize) -> bool {
        index >= self.first && index - self.first < self.len
    }
}

/// The weights by which each of the 64 samples along one axis reads the
/// pixels along it: the box filter applied twice, then decimated.
struct AxisTaps {
    spans: [Span; BLOCK],
    weights: Vec<f32>,
}

impl AxisTaps {
    fn new(length: usize) -> Self {
        let mut spans = [Span::default(); BLOCK];
        let mut weights = Vec::new();
        if length == 0 {
            return Self { spans, weights };
        }
        let (before, after) = box_reach(box_width(length));
        // A box's window at `i`, cut off at the edges (where the reference
        // averages only the pixels that exist).
        let window = |i: usize| (i.saturating_sub(before), (i + after).min(length - 1));
        for (index, span) in spans.iter_mut().enumerate() {
            let (outer_first, outer_last) = window(decimation_centre(index, length));
            let first = window(outer_first).0;
            let last = window(outer_last).1;
            let mut tent = vec![0.0f64; last - first + 1];
            let outer_share = 1.0 / (outer_last - outer_first + 1) as f64;
            for middle in outer_first..=outer_last {
                let (inner_first, inner_last) = window(middle);
                let share = outer_share / (inner_last - inner_first + 1) as f64;
                for weight in &mut tent[inner_first - first..=inner_last - first] {
                    *weight += share;
                }
            }
            *span = Span {
                first,
                len: tent.len(),
                offset: weights.len(),
            };
            weights.extend(tent.iter().map(|&w| w as f32));
        }
        Self { spans, weights }
    }

    fn weights_of(&self, span: &Span) -> &[f32] {
        self.weights
            .get(span.offset..span.offset + span.len)
            .unwrap_or_default()
    }

    /// The weight of pixel `index` in `span`'s sample, if it has one.
    fn weight(&self, span: &Span, index: usize) -> Option<f32> {
        if !span.covers(index) {
            return None;
        }
        self.weights_of(span).get(index - span.first).copied()
    }

    /// The 64 samples of one line of pixels.
    fn sample(&self, line: &[f32]) -> [f32; BLOCK] {
        let mut samples = [0.0f32; BLOCK];
        for (sample, span) in samples.iter_mut().zip(&self.spans) {
            let pixels = line.get(span.first..).unwrap_or_default();
            *sample = dot(self.weights_of(span), pixels);
        }
        samples
    }
}

/// Dot product over the shorter of the two, in four lanes so that the
/// compiler can keep it in vector registers.
fn dot(weights: &[f32], values: &[f32]) -> f32 {
    let len = weights.len().min(values.len());
    let mut weight_chunks = weights[..len].chunks_exact(4);
    let mut value_chunks = values[..len].chunks_exact(4);
    let mut lanes = [0.0f32; 4];
    for (w, v) in (&mut weight_chunks).zip(&mut value_chunks) {
        for ((lane, w), v) in lanes.iter_mut().zip(w).zip(v) {
            *lane += w * v;
        }
    }
    let tail: f32 = weight_chunks
        .remainder()
        .iter()
        .zip(value_chunks.remainder())
        .map(|(w, v)| w * v)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// The reference's heuristic quality: the sum of the block's vertical and
/// horizontal neighbour differences, each as a whole percentage of full
/// scale (truncated, so small ripples count for nothing), over 90, capped at
/// 100.
fn quality_of(block: &[[f32; BLOCK]; BLOCK]) -> u8 {
    let step = |a: f32, b: f32| (((a - b) * 100.0) / 255.0) as i32;
    let mut gradient_sum: i64 = 0;
    for (upper, lower) in block.iter().zip(block.iter().skip(1)) {
        for (a, b) in upper.iter().zip(lower) {
            gradient_sum += i64::from(step(*a, *b).unsigned_abs());
        }
    }
    for row in block {
        for (a, b) in row.iter().zip(row.iter().skip(1)) {
            gradient_sum += i64::from(step(*a, *b).unsigned_abs());
        }
    }
    (gradient_sum / 90).min(100) as u8
}

/// Rows 1..=16 of the 64-point DCT-II matrix (orthonormal scaling), the
/// only frequencies PDQ keeps; built once.
fn dct_matrix() -> &'static [[f32; BLOCK]; FREQUENCIES] {
    static MATRIX: OnceLock<[[f32; BLOCK]; FREQUENCIES]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0 / BLOCK as f64).sqrt();
        let mut matrix = [[0.0f32; BLOCK]; FREQUENCIES];
        for (row, frequency) in matrix.iter_mut().zip(1..) {
            for (entry, position) in row.iter_mut().zip(0..) {
                let angle = std::f64::consts::PI / (2.0 * BLOCK as f64)
                    * f64::from(frequency)
                    * f64::from(2 * position + 1);
                *entry = (scale * angle.cos()) as f32;
            }
        }
        matrix
    })
}

/// `D A Dᵀ` for the 16 x 64 DCT matrix `D`: frequency `(i, j)` is vertical
/// frequency `i + 1` (down the block's rows) and horizontal `j + 1`.
fn dct_16_of_64(block: &[[f32; BLOCK]; BLOCK]) -> [[f64; FREQUENCIES]; FREQUENCIES] {
    let matrix = dct_matrix();
    // Vertical pass: `D A`, 16 x 64.
    let mut vertical = [[0.0f64; BLOCK]; FREQUENCIES];
    for (out_row, basis) in vertical.iter_mut().zip(matrix) {
        for (block_row, &factor) in block.iter().zip(basis) {
            for (out, &value) in out_row.iter_mut().zip(block_row) {
                *out += f64::from(factor) * f64::from(value);
            }
        }
    }
    // Horizontal pass: `(D A) Dᵀ`, 16 x 16.
    let mut coefficients = [[0.0f64; FREQUENCIES]; FREQUENCIES];
    for (out_row, vertical_row) in coefficients.iter_mut().zip(&vertical) {
        for (out, basis) in out_row.iter_mut().zip(matrix) {
            *out = vertical_row
                .iter()
                .zip(basis)
                .map(|(&v, &d)| v * f64::from(d))
                .sum();
        }
    }
    coefficients
}

/// One bit per coefficient, set where it exceeds the median (the 128th
/// smallest of the 256, as the reference's selection returns). Coefficient
/// `(i, j)` is bit `16 i + j` of the 256-bit number whose big-endian bytes
/// are the hash, which is the order of the standard hex form.
fn bits_above_median(coefficients: &[[f64; FREQUENCIES]; FREQUENCIES]) -> [u8; HASH_BYTES] {
    let flat: Vec<f64> = coefficients.iter().flatten().copied().collect();
    let mut sorted = flat.clone();
    let middle = FREQUENCIES * FREQUENCIES / 2 - 1;
    let (_, median, _) = sorted.select_nth_unstable_by(middle, f64::total_cmp);
    let median = *median;
    let mut hash = [0u8; HASH_BYTES];
    for (bit, value) in flat.iter().enumerate() {
        if *value > median {
            hash[HASH_BYTES - 1 - bit / 8] |= 1 << (bit % 8);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_images::{Rng, photo};

    /// A picture's luminance as PDQ defines it.
    fn luma_of(width: u32, height: u32, seed: u64) -> Vec<f32> {
        photo(width, height, seed)
            .pixels()
            .map(|p| {
                0.299 * f32::from(p.0[0]) + 0.587 * f32::from(p.0[1]) + 0.114 * f32::from(p.0[2])
            })
            .collect()
    }

    /// The algorithm as the reference spells it out, written for clarity
    /// rather than speed: whole-image box filters by running sums in the
    /// four phases the reference uses, decimation, a DCT by definition, and
    /// a median from a sorted copy.
    mod direct {
        use super::super::{BLOCK, FREQUENCIES};

        /// One line through a box of `window`: first accumulate, then write
        /// as the window grows, then slide it, then write as it shrinks.
        fn box_line(input: &[f32], window: usize) -> Vec<f32> {
            let half = (window + 2) / 2;
            let mut output = Vec::with_capacity(input.len());
            let (mut sum, mut count, mut left) = (0.0f32, 0usize, 0usize);
            for &value in &input[..half - 1] {
                sum += value;
                count += 1;
            }
            for &value in &input[half - 1..window] {
                sum += value;
                count += 1;
                output.push(sum / count as f32);
            }
            for &value in &input[window..] {
                sum += value - input[left];
                left += 1;
                output.push(sum / count as f32);
            }
            while output.len() < input.len() {
                sum -= input[left];
                left += 1;
                count -= 1;
                output.push(sum / count as f32);
            }
            output
        }

        fn transpose(pixels: &[f32], width: usize, height: usize) -> Vec<f32> {
            let mut out = vec![0.0; pixels.len()];
            for y in 0..height {
                for x in 0..width {
                    out[x * height + y] = pixels[y * width + x];
                }
            }
            out
        }

        fn box_rows(pixels: &[f32], width: usize, window: usize) -> Vec<f32> {
            pixels
                .chunks(width)
                .flat_map(|row| box_line(row, window))
                .collect()
        }

        pub fn hash(luma: &[f32], width: usize, height: usize) -> ([u8; 32], u8) {
            let across = width.div_ceil(128);
            let down = height.div_ceil(128);
            let mut pixels = luma.to_vec();
            for _ in 0..2 {
                pixels = box_rows(&pixels, width, across);
                let columns = box_rows(&transpose(&pixels, width, height), height, down);
                pixels = transpose(&columns, height, width);
            }
            let mut block = [[0.0f32; BLOCK]; BLOCK];
            for (i, row) in block.iter_mut().enumerate() {
                let y = ((i as f64 + 0.5) * height as f64 / 64.0) as usize;
                for (j, cell) in row.iter_mut().enumerate() {
                    let x = ((j as f64 + 0.5) * width as f64 / 64.0) as usize;
                    *cell = pixels[y * width + x];
                }
            }
            let mut gradients = 0;
            for i in 0..BLOCK {
                for j in 0..BLOCK {
                    if i + 1 < BLOCK {
                        gradients +=
                            (((block[i][j] - block[i + 1][j]) * 100.0 / 255.0) as i32).abs();
                    }
                    if j + 1 < BLOCK {
                        gradients +=
                            (((block[i][j] - block[i][j + 1]) * 100.0 / 255.0) as i32).abs();
                    }
                }
            }
            let quality = (gradients / 90).min(100) as u8;
            let basis = |u: usize, x: usize| {
                (2.0f64 / 64.0).sqrt()
                    * (std::f64::consts::PI * (u + 1) as f64 * (2 * x + 1) as f64 / 128.0).cos()
            };
            let mut coefficients = Vec::with_capacity(256);
            for u in 0..FREQUENCIES {
                for v in 0..FREQUENCIES {
                    let mut sum = 0.0;
                    for (y, row) in block.iter().enumerate() {
                        for (x, value) in row.iter().enumerate() {
                            sum += basis(u, y) * basis(v, x) * f64::from(*value);
                        }
                    }
                    coefficients.push(sum);
                }
            }
            let mut sorted = coefficients.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[127];
            let mut hash = [0u8; 32];
            for (bit, value) in coefficients.iter().enumerate() {
                if *value > median {
                    hash[31 - bit / 8] |= 1 << (bit % 8);
                }
            }
            (hash, quality)
        }
    }

    #[test]
    fn matches_the_algorithm_written_out_directly() {
        // Sides below 128 (no blur), just over (windows of 2), odd and even
        // windows, tall and wide, and exactly 64.
        for (seed, (width, height)) in [
            (37, 23),
            (64, 64),
            (100, 129),
            (130, 257),
            (320, 200),
            (1000, 70),
            (333, 555),
        ]
        .into_iter()
        .enumerate()
        {
            let luma = luma_of(width, height, seed as u64);
            let ours = pdq_from_luma(&luma, width as usize, height as usize).unwrap();
            let (hash, quality) = direct::hash(&luma, width as usize, height as usize);
            let distance = crate::banks::hamming(&ours.hash, &hash);
            assert!(distance <= 2, "{width}x{height}: {distance} bits apart");
            assert!(
                ours.quality.abs_diff(quality) <= 1,
                "{width}x{height}: quality {} against {quality}",
                ours.quality
            );
        }
    }

    #[test]
    fn a_picture_sets_half_the_bits() {
        let luma = luma_of(300, 200, 7);
        let hash = pdq_from_luma(&luma, 300, 200).unwrap();
        let ones: u32 = hash.hash.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 128);
        assert!(hash.is_matchable(), "quality {}", hash.quality);
    }

    #[test]
    fn flat_and_near_flat_pictures_are_not_matchable() {
        let flat = pdq_from_luma(&[128.0; 200 * 150], 200, 150).unwrap();
        assert_eq!(flat.quality, 0);
        assert!(!flat.is_matchable());
        let mut rng = Rng::new(9);
        let faint: Vec<f32> = (0..200 * 150)
            .map(|_| 128.0 + (rng.unit() - 0.5) * 6.0)
            .collect();
        let faint = pdq_from_luma(&faint, 200, 150).unwrap();
        assert!(faint.quality <= LOW_QUALITY, "quality {}", faint.quality);
        // A smooth ramp has structure only at the lowest frequency.
        let ramp: Vec<f32> = (0..200 * 150).map(|i| (i % 200) as f32 * 0.1).collect();
        let ramp = pdq_from_luma(&ramp, 200, 150).unwrap();
        assert!(ramp.quality <= LOW_QUALITY, "quality {}", ramp.quality);
    }

    #[test]
    fn sides_below_five_give_the_empty_hash() {
        for (width, height) in [(4, 100), (100, 4), (1, 1)] {
            let hash = pdq_from_luma(&vec![50.0; width * height], width, height).unwrap();
            assert_eq!(
                hash,
                PdqHash {
                    hash: [0; 32],
                    quality: 0
                },
                "{width}x{height}"
            );
        }
        assert_eq!(pdq_from_luma(&[], 0, 0).unwrap().quality, 0);
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_refused() {
        assert_eq!(pdq_from_luma(&[0.0; 10], 3, 3), None);
        assert_eq!(pdq_from_luma(&[0.0; 10], usize::MAX, 2), None);
    }

    #[test]
    fn rows_may_arrive_in_any_order_and_unwanted_rows_are_skipped() {
        let (width, height) = (90, 100);
        let luma = luma_of(width as u32, height as u32, 11);
        let mut hasher = PdqHasher::new(width, height);
        let mut skipped = 0;
        for (y, row) in luma.chunks(width).enumerate().rev() {
            if hasher.wants_row(y) {
                hasher.add_row(y, row);
            } else {
                skipped += 1;
            }
        }
        // Under 128 rows there is no blur: only the 64 sampled rows count.
        assert_eq!(skipped, height - 64);
        assert_eq!(Some(hasher.finish()), pdq_from_luma(&luma, width, height));
    }

    #[test]
    fn bits_are_in_the_standard_hex_order() {
        // Coefficient k (row-major) set when k is in the upper half: the
        // first 16 bytes (the highest bits) are all ones.
        let mut rising = [[0.0; FREQUENCIES]; FREQUENCIES];
        for (k, value) in rising.iter_mut().flatten().enumerate() {
            *value = k as f64;
        }
        let hash = PdqHash {
            hash: bits_above_median(&rising),
            quality: 100,
        };
        assert_eq!(
            hash.to_string(),
            format!("{}{}", "ff".repeat(16), "00".repeat(16))
        );
        // Within a byte, bit k % 8 of byte 31 - k / 8: set the upper four
        // bits of every byte.
        let mut nibbles = [[0.0; FREQUENCIES]; FREQUENCIES];
        for (k, value) in nibbles.iter_mut().flatten().enumerate() {
            *value = if k % 8 >= 4 { 1.0 } else { 0.0 } + k as f64 * 1e-6;
        }
        assert_eq!(hex::encode(bits_above_median(&nibbles)), "f0".repeat(32));
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = PdqHash {
            hash: [0; 32],
            quality: 100,
        };
        let b = PdqHash {
            hash: [0xFF; 32],
            quality: 100,
        };
        let mut c = a;
        c.hash[0] = 0b1000_0001;
        c.hash[31] = 1;
        assert_eq!(a.distance(&a), 0);
        assert_eq!(a.distance(&b), 256);
        assert_eq!(a.distance(&c), 3);
        assert_eq!(crate::banks::hamming(&b.hash, &c.hash), 253);
    }

    #[test]
    fn matchable_only_above_the_low_quality_line() {
        let at = |quality| PdqHash {
            hash: [0x5A; 32],
            quality,
        };
        assert!(!at(0).is_matchable());
        assert!(!at(LOW_QUALITY).is_matchable());
        assert!(at(LOW_QUALITY + 1).is_matchable());
        assert!(at(100).is_matchable());
    }

    #[test]
    fn box_windows_match_the_reference_rule() {
        // ceil(side / 128), at least 1.
        assert_eq!(box_width(64), 1);
        assert_eq!(box_width(128), 1);
        assert_eq!(box_width(129), 2);
        assert_eq!(box_width(1600), 13);
        assert_eq!(box_width(1004), 8);
        // An even box reaches one further forwards than back.
        assert_eq!(box_reach(1), (0, 0));
        assert_eq!(box_reach(7), (3, 3));
        assert_eq!(box_reach(8), (3, 4));
    }
}
