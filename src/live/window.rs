//! The live window (OpenCV highgui, on the main thread) and its keys.

use anyhow::{bail, Result};
use opencv::core::Mat;
use opencv::highgui;

/// Title of the window.
const TITLE: &str = "emolens live";
/// Milliseconds `waitKey` waits for a key: as short as possible, but it also lets the window
/// repaint.
const KEY_WAIT_MS: i32 = 1;
const KEY_ESCAPE: i32 = 27;

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// q or Esc: end the run.
    Quit,
    /// s: save the shown frame as PNG.
    Snapshot,
    /// r: start or stop recording.
    Record,
}

impl Key {
    fn from_code(code: i32) -> Option<Self> {
        if code < 0 {
            return None;
        }
        match code & 0xff {
            KEY_ESCAPE => Some(Key::Quit),
            c if c == i32::from(b'q') || c == i32::from(b'Q') => Some(Key::Quit),
            c if c == i32::from(b's') || c == i32::from(b'S') => Some(Key::Snapshot),
            c if c == i32::from(b'r') || c == i32::from(b'R') => Some(Key::Record),
            _ => None,
        }
    }
}

/// The open window; closed when dropped.
pub struct Window;

impl Window {
    /// Opens the window.
    ///
    /// # Errors
    /// No display to open it on.
    pub fn open() -> Result<Self> {
        if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
            bail!("no display to open the live window on (DISPLAY is not set); run it in a desktop session, or add --no-window to run headless");
        }
        // The frame at its own size; no toolbar (OpenCV's Qt backend adds one by default).
        let flags =
            highgui::WINDOW_AUTOSIZE | highgui::WINDOW_KEEPRATIO | highgui::WINDOW_GUI_NORMAL;
        highgui::named_window(TITLE, flags).map_err(|e| {
            anyhow::anyhow!("cannot open the live window ({e}); check DISPLAY, or add --no-window to run headless")
        })?;
        Ok(Self)
    }

    /// Shows `image` and returns the key pressed meanwhile, if any.
    ///
    /// # Errors
    /// OpenCV's error when showing fails.
    pub fn show(&self, image: &Mat) -> Result<Option<Key>> {
        highgui::imshow(TITLE, image)?;
        self.poll()
    }

    /// Handles window events and returns the key pressed, if any.
    ///
    /// # Errors
    /// OpenCV's error.
    pub fn poll(&self) -> Result<Option<Key>> {
        Ok(Key::from_code(highgui::wait_key(KEY_WAIT_MS)?))
    }

    /// Whether the user closed the window.
    pub fn closed(&self) -> bool {
        highgui::get_window_property(TITLE, highgui::WND_PROP_VISIBLE).is_ok_and(|v| v < 1.0)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Err(e) = highgui::destroy_window(TITLE) {
            eprintln!("warning: closing the live window: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_with_modifier_bits_ignored() {
        assert_eq!(Key::from_code(-1), None);
        assert_eq!(Key::from_code(i32::from(b'q')), Some(Key::Quit));
        assert_eq!(Key::from_code(27), Some(Key::Quit));
        assert_eq!(
            Key::from_code(0x10_0000 | i32::from(b's')),
            Some(Key::Snapshot)
        );
        assert_eq!(Key::from_code(i32::from(b'R')), Some(Key::Record));
        assert_eq!(Key::from_code(i32::from(b'x')), None);
    }
}
