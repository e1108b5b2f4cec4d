//! Training-time augmentation and test-time views of square grayscale faces: horizontal flip,
//! small rotation, shift and zoom (one affine warp with bilinear sampling) and
//! brightness/contrast jitter. Only training images are augmented.

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
    };
}

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
