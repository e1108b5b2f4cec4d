//! The capture side of live mode: opening a camera, stream or file with OpenCV's VideoCapture,
//! and a thread that reads frames into a single-slot mailbox. Frame policy: the newest frame
//! wins. A frame still in the slot when the next one arrives is dropped (counted), never queued,
//! so processing always gets the latest picture and memory stays flat whatever the speeds.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

/// A stream that does not connect within this time is reported as unreachable.
const STREAM_OPEN_TIMEOUT_MS: i32 = 10_000;
/// A stream that delivers nothing for this long is treated as ended.
const STREAM_READ_TIMEOUT_MS: i32 = 5_000;

/// Where live frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A camera by index: `/dev/videoN` through V4L2.
    Camera(i32),
    /// A network stream (`rtsp://`, `http://`, ...) through OpenCV's FFmpeg backend.
    Stream(String),
    /// A video file through OpenCV's FFmpeg backend.
    File(PathBuf),
}

impl FromStr for Source {
    type Err = String;

    /// Digits are a camera index, `scheme://...` a stream, anything else a file path.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(
                "empty source: give a camera index (0), a stream URL or a video file".into(),
            );
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(Source::Camera).map_err(|_| {
                format!("camera index {text} is out of range: use a small number such as 0")
            });
        }
        if text.contains("://") {
            return Ok(Source::Stream(text.to_owned()));
        }
        Ok(Source::File(PathBuf::from(text)))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Camera(index) => write!(f, "camera {index}"),
            Source::Stream(url) => f.write_str(url),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A source could not be opened or read; messages name the source and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No device node for the camera index.
    #[error("camera {0}: no such camera (/dev/video{0} does not exist); connect a camera, or list them with `ls /dev/video*` and pass that number to --source, or give a video file or stream URL")]
    NoCamera(i32),
    /// The device exists but does not open.
    #[error("camera {0} (/dev/video{0}) could not be opened: it is busy, not a video capture device, or not readable by you; close other programs using it, check that you are in the `video` group, or try another --source index")]
    CameraUnavailable(i32),
    /// The file does not exist.
    #[error("{0}: not found; give an existing video file, a camera index (0) or a stream URL (rtsp://...)")]
    NoFile(PathBuf),
    /// OpenCV cannot read the file as video.
    #[error("{0}: OpenCV cannot read it as a video; give a video file FFmpeg reads (mp4, mov, mkv, avi, ...)")]
    NotVideo(PathBuf),
    /// The stream does not open.
    #[error("{0}: the stream could not be opened; check the address, that the server is running and that it is reachable from here")]
    StreamUnavailable(String),
    /// The source opened but gave no picture.
    #[error("{0}: opened, but delivered no frame; check that the camera works (e.g. with `ffplay`), or give another source")]
    NoFrames(String),
    /// OpenCV failed.
    #[error("{input}: OpenCV: {error}")]
    OpenCv {
        /// The source.
        input: String,
        /// OpenCV's message.
        error: opencv::Error,
    },
}

/// An opened source with its first frame (so that a source that opens but gives nothing is
/// reported before anything else starts).
pub struct Capture {
    capture: VideoCapture,
    first: Mat,
    /// Frames per second the source states, if any.
    pub fps: Option<f64>,
    /// What was opened.
    pub source: Source,
}

impl Capture {
    /// Opens `source` and reads its first frame.
    ///
    /// # Errors
    /// [`CaptureError`] naming the source and the fix.
    pub fn open(source: &Source) -> Result<Self, CaptureError> {
        let opencv = |error| CaptureError::OpenCv {
            input: source.to_string(),
            error,
        };
        let mut capture = match source {
            Source::Camera(index) => open_camera(*index)?,
            Source::Stream(url) => {
                let timeouts = Vector::from_slice(&[
                    videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
                    STREAM_OPEN_TIMEOUT_MS,
                    videoio::CAP_PROP_READ_TIMEOUT_MSEC,
                    STREAM_READ_TIMEOUT_MS,
                ]);
                let capture =
                    VideoCapture::from_file_with_params(url, videoio::CAP_FFMPEG, &timeouts)
                        .map_err(opencv)?;
                if !capture.is_opened().map_err(opencv)? {
                    return Err(CaptureError::StreamUnavailable(url.clone()));
                }
                capture
            }
            Source::File(path) => open_file(path)?,
        };
        let mut first = Mat::default();
        if !capture.read(&mut first).map_err(opencv)? || first.empty() {
            return Err(CaptureError::NoFrames(source.to_string()));
        }
        let fps = capture
            .get(videoio::CAP_PROP_FPS)
            .ok()
            .filter(|fps| fps.is_finite() && *fps > 0.0);
        Ok(Self {
            capture,
            first,
            fps,
            source: source.clone(),
        })
    }

    /// Width and height of the frames.
    pub fn frame_size(&self) -> opencv::core::Size {
        self.first.size().unwrap_or_default()
    }
}

fn open_camera(index: i32) -> Result<VideoCapture, CaptureError> {
    if !Path::new(&format!("/dev/video{index}")).exists() {
        return Err(CaptureError::NoCamera(index));
    }
    let opened = VideoCapture::new(index, videoio::CAP_V4L2)
        .and_then(|capture| Ok((capture.is_opened()?, capture)));
    match opened {
        Ok((true, capture)) => Ok(capture),
        _ => Err(CaptureError::CameraUnavailable(index)),
    }
}

fn open_file(path: &Path) -> Result<VideoCapture, CaptureError> {
    if !path.is_file() {
        return Err(CaptureError::NoFile(path.to_owned()));
    }
    let opened = VideoCapture::from_file(path, videoio::CAP_FFMPEG)
        .and_then(|capture| Ok((capture.is_opened()?, capture)));
    match opened {
        Ok((true, capture)) => Ok(capture),
        _ => Err(CaptureError::NotVideo(path.to_owned())),
    }
}

/// One captured frame.
pub struct Captured {
    /// The picture, BGR.
    pub image: Mat,
    /// Position in the source, from 0 (dropped frames included).
    pub index: u64,
    /// When the capture thread got it: the start of its latency.
    pub at: Instant,
    /// Seconds since the first frame was captured.
    pub time: f64,
}

/// Frame counts kept by the slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames delivered by the capture thread.
    pub captured: u64,
    /// Frames replaced by a newer one before processing took them, or left at the end.
    pub dropped: u64,
}

/// What [`Slot::take`] found.
pub enum Take {
    /// The newest frame.
    Frame(Captured),
    /// Nothing new within the wait.
    Empty,
    /// The source ended and every frame was taken.
    Ended,
}

#[derive(Default)]
struct SlotState {
    newest: Option<Captured>,
    /// A picture buffer processing handed back, for the capture thread to read into.
    spare: Option<Mat>,
    counts: Counts,
    ended: bool,
    closed: bool,
}

/// The single-slot mailbox between the capture thread and processing.
#[derive(Default)]
pub struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A panic elsewhere cannot leave the counters half-updated, so the state stays usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a frame, replacing (and counting as dropped) one not yet taken. Returns a buffer
    /// to read the next frame into, or `None` once processing has closed the slot.
    pub fn put(&self, frame: Captured) -> Option<Mat> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        state.counts.captured += 1;
        let replaced = state.newest.replace(frame);
        let buffer = match replaced {
            Some(old) => {
                state.counts.dropped += 1;
                old.image
            }
            None => state.spare.take().unwrap_or_default(),
        };
        self.changed.notify_all();
        Some(buffer)
    }

    /// Marks the end of the source.
    pub fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_all();
    }

    /// Takes the newest frame, waiting up to `timeout` for one.
    pub fn take(&self, timeout: Duration) -> Take {
        let state = self.lock();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.newest.is_none() && !s.ended)
            .unwrap_or_else(PoisonError::into_inner);
        match state.newest.take() {
            Some(frame) => Take::Frame(frame),
            None if state.ended => Take::Ended,
            None => Take::Empty,
        }
    }

    /// Hands a processed frame's buffer back for reuse.
    pub fn recycle(&self, image: Mat) {
        self.lock().spare.get_or_insert(image);
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// Stops the capture thread: later frames are refused, one left in the slot counts as
    /// dropped. Returns the final counts.
    pub fn close(&self) -> Counts {
        let mut state = self.lock();
        state.closed = true;
        if state.newest.take().is_some() {
            state.counts.dropped += 1;
        }
        self.changed.notify_all();
        state.counts
    }

    /// Waits until `deadline` or until the slot is closed; returns whether it was closed.
    fn wait_closed(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while !state.closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.closed
    }
}

/// When file frames are released: at their timestamps, from the moment the first was.
struct Pacer {
    start: Instant,
    first_ms: Option<f64>,
    last_offset_ms: Option<f64>,
    frame_ms: f64,
}

impl Pacer {
    fn new(fps: Option<f64>) -> Self {
        Self {
            start: Instant::now(),
            first_ms: None,
            last_offset_ms: None,
            frame_ms: 1000.0 / fps.unwrap_or(f64::from(crate::video::FALLBACK_FPS)),
        }
    }

    /// The moment a frame with position `position_ms` in the file is due. A timestamp that does
    /// not move forward (missing in some files) is taken as one frame after the last.
    fn due(&mut self, position_ms: f64) -> Instant {
        let first = *self.first_ms.get_or_insert(position_ms);
        let offset = position_ms - first;
        let offset = match self.last_offset_ms {
            None => offset.max(0.0),
            Some(last) if offset > last => offset,
            Some(last) => last + self.frame_ms,
        };
        self.last_offset_ms = Some(offset);
        self.start + Duration::from_secs_f64(offset / 1000.0)
    }
}

/// Reads frames into the slot until the source ends or the slot is closed. With `realtime`,
/// file frames are released at their native rate (a stand-in camera); otherwise as fast as
/// the source gives them. Always marks the slot ended when it returns.
///
/// # Errors
/// [`CaptureError::OpenCv`] when reading fails.
pub fn run(capture: Capture, realtime: bool, slot: &Slot) -> Result<(), CaptureError> {
    let result = read_frames(capture, realtime, slot);
    slot.end();
    result
}

fn read_frames(capture: Capture, realtime: bool, slot: &Slot) -> Result<(), CaptureError> {
    let Capture {
        mut capture,
        first,
        fps,
        source,
    } = capture;
    let opencv = |error| CaptureError::OpenCv {
        input: source.to_string(),
        error,
    };
    let mut pacer = realtime.then(|| Pacer::new(fps));
    let mut image = first;
    let mut first_at = None;
    for index in 0u64.. {
        if let Some(pacer) = pacer.as_mut() {
            let position = capture.get(videoio::CAP_PROP_POS_MSEC).map_err(opencv)?;
            if slot.wait_closed(pacer.due(position)) {
                return Ok(());
            }
        }
        let at = Instant::now();
        let start = *first_at.get_or_insert(at);
        let frame = Captured {
            image,
            index,
            at,
            time: at.duration_since(start).as_secs_f64(),
        };
        let Some(buffer) = slot.put(frame) else {
            return Ok(());
        };
        image = buffer;
        if !capture.read(&mut image).map_err(opencv)? || image.empty() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u64) -> Captured {
        Captured {
            image: Mat::default(),
            index,
            at: Instant::now(),
            time: 0.0,
        }
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!("0".parse(), Ok(Source::Camera(0)));
        assert_eq!(
            "rtsp://cam/1".parse(),
            Ok(Source::Stream("rtsp://cam/1".into()))
        );
        assert_eq!("clip.mp4".parse(), Ok(Source::File("clip.mp4".into())));
        assert!("99999999999".parse::<Source>().is_err());
        assert!("".parse::<Source>().is_err());
    }

    #[test]
    fn the_newest_frame_wins_and_every_frame_is_counted() {
        let slot = Slot::default();
        for index in 0..3 {
            assert!(slot.put(frame(index)).is_some());
        }
        let Take::Frame(taken) = slot.take(Duration::ZERO) else {
            panic!("a frame is waiting");
        };
        assert_eq!(taken.index, 2);
        assert!(matches!(slot.take(Duration::ZERO), Take::Empty));
        assert!(slot.put(frame(3)).is_some());
        slot.end();
        assert!(matches!(slot.take(Duration::ZERO), Take::Frame(_)));
        assert!(matches!(slot.take(Duration::ZERO), Take::Ended));
        let counts = slot.close();
        assert_eq!(
            counts,
            Counts {
                captured: 4,
                dropped: 2
            }
        );
        assert!(slot.put(frame(4)).is_none(), "closed");
    }

    #[test]
    fn a_frame_left_at_close_is_dropped() {
        let slot = Slot::default();
        slot.put(frame(0));
        assert_eq!(slot.close().dropped, 1);
    }

    #[test]
    fn pacing_follows_timestamps_and_fills_gaps() {
        let mut pacer = Pacer::new(Some(25.0));
        let start = pacer.start;
        assert_eq!(pacer.due(100.0), start);
        assert_eq!(pacer.due(140.0), start + Duration::from_millis(40));
        // A timestamp that does not advance counts as one frame later.
        assert_eq!(pacer.due(140.0), start + Duration::from_millis(80));
    }
}
