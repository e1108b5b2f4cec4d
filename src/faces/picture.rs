//! A frame as the face-analysis core sees it: the YUV 4:2:0 planes of a decoded video frame
//! (annotate) or a BGR image with its gray copy (live). Detectors and crops ask it for what they
//! need: the gray picture at full size, or a region of it in BGR at a working size. Only that
//! region is converted, never the whole frame.

use opencv::core::{Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::video::PlaneMats;

use super::intersect;

/// How a gray picture codes black and white.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrayLevels {
    /// 0 to 255, as OpenCV's BGR-to-gray conversion gives (and as the models were trained).
    Full,
    /// 16 to 235, as the luma plane of video holds.
    Video,
}

impl GrayLevels {
    /// The 0..=255 value of a sample.
    pub fn full_range(self, sample: u8) -> f32 {
        match self {
            Self::Full => f32::from(sample),
            Self::Video => ((f32::from(sample) - 16.0) * (255.0 / 219.0)).clamp(0.0, 255.0),
        }
    }
}

/// One frame, borrowed.
pub enum Picture<'a> {
    /// A decoded video frame's planes (luma is the gray picture, video levels).
    Yuv420(&'a PlaneMats),
    /// A BGR image and its gray conversion (full levels).
    Bgr {
        /// The image.
        bgr: &'a Mat,
        /// Its gray copy, same size.
        gray: &'a Mat,
    },
}

/// Buffers for [`Picture::bgr_region`], reused from frame to frame.
#[derive(Default)]
pub struct RegionBuffers {
    plane: Mat,
    i420: Vec<u8>,
}

impl Picture<'_> {
    /// The gray picture, full size, and how it codes levels.
    pub fn gray(&self) -> (&Mat, GrayLevels) {
        match self {
            Self::Yuv420(planes) => (&planes.y, GrayLevels::Video),
            Self::Bgr { gray, .. } => (gray, GrayLevels::Full),
        }
    }

    /// Width and height in pixels.
    pub fn size(&self) -> Size {
        let (gray, _) = self.gray();
        Size::new(gray.cols(), gray.rows())
    }

    /// The frame's bounds.
    pub fn bounds(&self) -> Rect {
        let size = self.size();
        Rect::new(0, 0, size.width, size.height)
    }

    /// `region` (clipped to the frame) resized to `size` (even width and height) as 8-bit BGR
    /// into `out`, for a detector: bilinear, which is 15 to 60 times cheaper than area averaging
    /// at the ratios a face patch needs and found the same faces (the photos of
    /// ../shared/data/faces, YuNet at 640 pixels wide: same hits, scores within 0.01).
    ///
    /// # Errors
    /// OpenCV's error for an empty region or a failed conversion.
    pub fn bgr_region(
        &self,
        region: Rect,
        size: Size,
        buffers: &mut RegionBuffers,
        out: &mut Mat,
    ) -> opencv::Result<()> {
        let region = intersect(region, self.bounds());
        match self {
            Self::Bgr { bgr, .. } => imgproc::resize(
                &Mat::roi(*bgr, region)?,
                out,
                size,
                0.0,
                0.0,
                imgproc::INTER_LINEAR,
            ),
            Self::Yuv420(planes) => {
                // Chroma covers 2x2 luma samples: take the region's whole chroma samples.
                let x0 = region.x & !1;
                let y0 = region.y & !1;
                let luma = Rect::new(
                    x0,
                    y0,
                    region.x + region.width - x0,
                    region.y + region.height - y0,
                );
                let chroma = Rect::new(
                    x0 / 2,
                    y0 / 2,
                    ((luma.width + 1) / 2).min(planes.u.cols() - x0 / 2),
                    ((luma.height + 1) / 2).min(planes.u.rows() - y0 / 2),
                );
                let half = Size::new(size.width / 2, size.height / 2);
                buffers.i420.clear();
                for (plane, part, to) in [
                    (&planes.y, luma, size),
                    (&planes.u, chroma, half),
                    (&planes.v, chroma, half),
                ] {
                    imgproc::resize(
                        &Mat::roi(plane, part)?,
                        &mut buffers.plane,
                        to,
                        0.0,
                        0.0,
                        imgproc::INTER_LINEAR,
                    )?;
                    buffers.i420.extend_from_slice(buffers.plane.data_bytes()?);
                }
                let i420 =
                    Mat::new_rows_cols_with_data(size.height * 3 / 2, size.width, &buffers.i420)?;
                imgproc::cvt_color_def(&i420, out, imgproc::COLOR_YUV2BGR_I420)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_levels_stretch_to_full_range() {
        assert_eq!(GrayLevels::Video.full_range(16), 0.0);
        assert_eq!(GrayLevels::Video.full_range(235), 255.0);
        assert_eq!(GrayLevels::Video.full_range(250), 255.0);
        assert_eq!(GrayLevels::Full.full_range(7), 7.0);
    }

    #[test]
    fn a_yuv_region_comes_out_in_the_colour_of_its_planes() -> opencv::Result<()> {
        use opencv::core::{Scalar, CV_8UC1};
        // A red-ish frame in BT.601 video levels: Y 81, U 90, V 240.
        let planes = PlaneMats {
            y: Mat::new_rows_cols_with_default(40, 60, CV_8UC1, Scalar::all(81.0))?,
            u: Mat::new_rows_cols_with_default(20, 30, CV_8UC1, Scalar::all(90.0))?,
            v: Mat::new_rows_cols_with_default(20, 30, CV_8UC1, Scalar::all(240.0))?,
        };
        let picture = Picture::Yuv420(&planes);
        let mut out = Mat::default();
        picture.bgr_region(
            Rect::new(11, 7, 30, 20),
            Size::new(16, 10),
            &mut RegionBuffers::default(),
            &mut out,
        )?;
        assert_eq!((out.cols(), out.rows(), out.channels()), (16, 10, 3));
        let pixel = *out.at_2d::<opencv::core::Vec3b>(5, 8)?;
        assert!(
            pixel[2] > 200 && pixel[1] < 40 && pixel[0] < 40,
            "{pixel:?}"
        );
        Ok(())
    }
}
