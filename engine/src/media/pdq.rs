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
