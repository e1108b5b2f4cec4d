//! Training-time augmentation and test-time views of square grayscale faces: horizontal flip,
//! small rotation, shift and zoom (one affine warp with bilinear sampling),
//! brightness/contrast jitter and random erasing; and the Beta draws of mixup. Only training
//! images are augmented.

use rand::Rng;

/// Ranges of the random changes applied to each training image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentConfig {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Largest rotation either way, in degrees.
    pub max_rotation_deg: f32,
    /// Largest shift either way, as a fraction of the image side.
    pub max_shift: f32,
    /// Largest zoom in or out, as a fraction (0.1 = scale 0.9..=1.1).
    pub max_zoom: f32,
    /// Largest brightness change either way, as a fraction of the 0..=255 range.
    pub brightness: f32,
    /// Largest contrast change either way, as a fraction (0.2 = contrast 0.8..=1.2).
    pub contrast: f32,
    /// Probability of random erasing (Zhong et al. 2020): a rectangle of 2 to 33 % of the
    /// image, of aspect 0.3 to 3.3, filled with noise.
    pub erase: f32,
}

impl AugmentConfig {
    /// No change at all.
    pub const NONE: Self = Self {
        flip: false,
        max_rotation_deg: 0.0,
        max_shift: 0.0,
        max_zoom: 0.0,
        brightness: 0.0,
        contrast: 0.0,
        erase: 0.0,
    };

    /// The ranges the default model was trained with: faces from Haar crops vary by a few
    /// degrees of roll, about a tenth of the side in position and scale, and in exposure.
    pub const DEFAULT: Self = Self {
        flip: true,
        max_rotation_deg: 10.0,
        max_shift: 0.1,
        max_zoom: 0.1,
        brightness: 0.15,
        contrast: 0.25,
        erase: 0.0,
    };
}

/// Shares of the image a random erasure covers.
const ERASE_AREA: std::ops::RangeInclusive<f32> = 0.02..=0.33;
/// Aspect ratios (height / width) of a random erasure.
const ERASE_ASPECT: std::ops::RangeInclusive<f32> = 0.3..=3.3;

/// One affine change of an image about its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    /// Mirror left-right.
    pub flip: bool,
    /// Rotation in degrees (counter-clockwise).
    pub rotation_deg: f32,
    /// Shift in pixels `[x, y]`.
    pub shift: [f32; 2],
    /// Scale factor (> 1 zooms in).
    pub scale: f32,
}

impl Warp {
    /// The identity.
    pub const IDENTITY: Self = Self {
        flip: false,
        rotation_deg: 0.0,
        shift: [0.0, 0.0],
        scale: 1.0,
    };

    /// Whether applying it leaves every pixel where it is.
    fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }
}

/// Writes an augmented copy of `src` (`[size, size]` u8) into `out` as f32 in 0..=255.
pub fn augment(
    src: &[u8],
    size: usize,
    config: &AugmentConfig,
    rng: &mut impl Rng,
    out: &mut [f32],
) {
    let side = size as f32;
    let mut uniform = |range: f32| {
        if range > 0.0 {
            rng.random_range(-range..=range)
        } else {
            0.0
        }
    };
    let warp = Warp {
        rotation_deg: uniform(config.max_rotation_deg),
        shift: [
            uniform(config.max_shift * side),
            uniform(config.max_shift * side),
        ],
        scale: 1.0 + uniform(config.max_zoom),
        flip: false,
    };
    let contrast = 1.0 + uniform(config.contrast);
    let brightness = uniform(config.brightness) * 255.0;
    let flip = config.flip && rng.random_bool(0.5);
    apply_warp(src, size, &Warp { flip, ..warp }, out);
    if contrast != 1.0 || brightness != 0.0 {
        let mean = out.iter().sum::<f32>() / out.len() as f32;
        for p in out.iter_mut() {
            *p = ((*p - mean) * contrast + mean + brightness).clamp(0.0, 255.0);
        }
    }
    if config.erase > 0.0 && rng.random_bool(f64::from(config.erase.min(1.0))) {
        erase(out, size, rng);
    }
}

/// Fills a random rectangle of `image` (`[size, size]`, 0..=255) with uniform noise: its area
/// and aspect drawn from [`ERASE_AREA`] and [`ERASE_ASPECT`] (the aspect log-uniformly), its
/// place uniformly; shrunk to fit the image.
fn erase(image: &mut [f32], size: usize, rng: &mut impl Rng) {
    let side = size as f32;
    let area = rng.random_range(ERASE_AREA) * side * side;
    let aspect = rng
        .random_range(ERASE_ASPECT.start().ln()..=ERASE_ASPECT.end().ln())
        .exp();
    let fit = |v: f32| (v.round() as usize).clamp(1, size);
    let (height, width) = (fit((area * aspect).sqrt()), fit((area / aspect).sqrt()));
    let top = rng.random_range(0..=size - height);
    let left = rng.random_range(0..=size - width);
    for row in image.chunks_mut(size).skip(top).take(height) {
        for p in &mut row[left..left + width] {
            *p = rng.random_range(0.0..=255.0);
        }
    }
}

/// A draw from the symmetric Beta(`alpha`, `alpha`) distribution, the mixing weight of mixup:
/// `X / (X + Y)` for two Gamma(`alpha`) draws.
pub fn beta_symmetric(alpha: f32, rng: &mut impl Rng) -> f32 {
    let x = gamma(alpha, rng);
    let y = gamma(alpha, rng);
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

/// A Gamma(`shape`, 1) draw (Marsaglia and Tsang 2000; shapes under 1 through
/// `Gamma(shape + 1) * U^(1 / shape)`).
fn gamma(shape: f32, rng: &mut impl Rng) -> f32 {
    if shape < 1.0 {
        let u: f32 = rng.random_range(f32::EPSILON..1.0);
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // A standard normal draw (Box-Muller).
        let (u1, u2): (f32, f32) = (
            rng.random_range(f32::EPSILON..1.0),
            rng.random_range(0.0..1.0),
        );
        let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f32 = rng.random_range(f32::EPSILON..1.0);
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// The fixed views averaged by test-time augmentation, in order: the image itself, its
/// mirror, then mirrored and plain copies shifted by 2 px and zoomed by 5 %.
pub const TTA_VIEWS: [Warp; 8] = [
    Warp::IDENTITY,
    Warp {
        flip: true,
        ..Warp::IDENTITY
    },
    Warp {
        shift: [2.0, 0.0],
        ..Warp::IDENTITY
    },
    Warp {
        flip: true,
        shift: [-2.0, 0.0],
        ..Warp::IDENTITY
    },
    Warp {
        shift: [0.0, 2.0],
        ..Warp::IDENTITY
    },
    Warp {
        flip: true,
        shift: [0.0, -2.0],
        ..Warp::IDENTITY
    },
    Warp {
        scale: 1.05,
        ..Warp::IDENTITY
    },
    Warp {
        flip: true,
        scale: 1.05,
        ..Warp::IDENTITY
    },
];

/// Writes `src` (`[size, size]` u8) changed by `warp` into `out` as f32 in 0..=255, sampling
/// bilinearly and repeating the border pixels outside the image.
pub fn apply_warp(src: &[u8], size: usize, warp: &Warp, out: &mut [f32]) {
    debug_assert_eq!(src.len(), size * size);
    debug_assert_eq!(out.len(), size * size);
    if warp.is_identity() {
        for (o, &p) in out.iter_mut().zip(src) {
            *o = f32::from(p);
        }
        return;
    }
    let centre = (size as f32 - 1.0) / 2.0;
    let (sin, cos) = warp.rotation_deg.to_radians().sin_cos();
    let inv_scale = 1.0 / warp.scale;
    let last = size as f32 - 1.0;
    let pixel = |x: usize, y: usize| f32::from(src[y * size + x]);
    for y in 0..size {
        for x in 0..size {
            // Undo shift, scale and rotation to find where this output pixel comes from.
            let mut u = x as f32 - centre - warp.shift[0];
            let v = y as f32 - centre - warp.shift[1];
            if warp.flip {
                u = -u;
            }
            let sx = ((cos * u + sin * v) * inv_scale + centre).clamp(0.0, last);
            let sy = ((-sin * u + cos * v) * inv_scale + centre).clamp(0.0, last);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let top = pixel(x0, y0) * (1.0 - fx) + pixel(x1, y0) * fx;
            let bottom = pixel(x0, y1) * (1.0 - fx) + pixel(x1, y1) * fx;
            out[y * size + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const SIZE: usize = 8;

    fn gradient() -> Vec<u8> {
        (0..SIZE * SIZE).map(|i| (i % SIZE * 30) as u8).collect()
    }

    #[test]
    fn no_augmentation_is_the_identity() {
        let src = gradient();
        let mut out = vec![0.0; SIZE * SIZE];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        augment(&src, SIZE, &AugmentConfig::NONE, &mut rng, &mut out);
        assert!(out.iter().zip(&src).all(|(o, &s)| *o == f32::from(s)));
    }

    #[test]
    fn flip_mirrors_rows_exactly() {
        let src = gradient();
        let mut out = vec![0.0; SIZE * SIZE];
        apply_warp(&src, SIZE, &TTA_VIEWS[1], &mut out);
        for y in 0..SIZE {
            for x in 0..SIZE {
                assert_eq!(out[y * SIZE + x], f32::from(src[y * SIZE + SIZE - 1 - x]));
            }
        }
    }

    #[test]
    fn random_augmentation_stays_in_range_and_keeps_flat_images_flat() {
        let flat = vec![100u8; SIZE * SIZE];
        let mut out = vec![0.0; SIZE * SIZE];
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let geometry_only = AugmentConfig {
            brightness: 0.0,
            contrast: 0.0,
            ..AugmentConfig::DEFAULT
        };
        for _ in 0..50 {
            augment(&flat, SIZE, &geometry_only, &mut rng, &mut out);
            assert!(out.iter().all(|p| (p - 100.0).abs() < 1e-3));
            augment(
                &gradient(),
                SIZE,
                &AugmentConfig::DEFAULT,
                &mut rng,
                &mut out,
            );
            assert!(out.iter().all(|p| (0.0..=255.0).contains(p)));
        }
    }

    #[test]
    fn erasing_fills_one_rectangle_with_noise() {
        const SIDE: usize = 48;
        let flat = vec![100u8; SIDE * SIDE];
        let only_erase = AugmentConfig {
            erase: 1.0,
            ..AugmentConfig::NONE
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut out = vec![0.0; SIDE * SIDE];
        for _ in 0..50 {
            augment(&flat, SIDE, &only_erase, &mut rng, &mut out);
            let changed: Vec<(usize, usize)> = (0..SIDE * SIDE)
                .filter(|&i| out[i] != 100.0)
                .map(|i| (i / SIDE, i % SIDE))
                .collect();
            let rows = changed.iter().map(|c| c.0);
            let cols = changed.iter().map(|c| c.1);
            let (top, bottom) = (rows.clone().min().unwrap_or(0), rows.max().unwrap_or(0));
            let (left, right) = (cols.clone().min().unwrap_or(0), cols.max().unwrap_or(0));
            let box_area = ((bottom - top + 1) * (right - left + 1)) as f32;
            // Noise leaves almost every pixel of the rectangle changed, and nothing outside it.
            assert!(changed.len() as f32 >= 0.95 * box_area, "{changed:?}");
            let share = box_area / (SIDE * SIDE) as f32;
            assert!((0.01..=0.36).contains(&share), "erased share {share}");
            assert!(out.iter().all(|p| (0.0..=255.0).contains(p)));
        }
    }

    #[test]
    fn beta_draws_have_the_beta_mean_and_variance() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for alpha in [0.2f32, 0.4, 1.0, 2.0] {
            let draws: Vec<f32> = (0..20_000)
                .map(|_| beta_symmetric(alpha, &mut rng))
                .collect();
            assert!(draws.iter().all(|d| (0.0..=1.0).contains(d)));
            let mean = draws.iter().sum::<f32>() / draws.len() as f32;
            let variance =
                draws.iter().map(|d| (d - mean).powi(2)).sum::<f32>() / draws.len() as f32;
            let expected = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "alpha {alpha}: mean {mean}");
            assert!(
                (variance - expected).abs() < 0.05 * expected,
                "alpha {alpha}: variance {variance}, expected {expected}"
            );
        }
    }

    #[test]
    fn same_seed_gives_same_augmentation() {
        let src = gradient();
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut out = vec![0.0; SIZE * SIZE];
            augment(&src, SIZE, &AugmentConfig::DEFAULT, &mut rng, &mut out);
            out
        };
        assert_eq!(run(5), run(5));
    }
}
