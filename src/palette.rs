//! The colours of emotion labels: one palette for the boxes in the video and the charts of the
//! engagement report, so that a label looks the same in both. The FER2013 emotions, the CK+
//! names of the same emotions and the valence groups have fixed colours; other labels (a custom
//! model's) take the fallback palette by their index among the model's labels.

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Fixed colours, by label.
const LABEL_COLOURS: [(&str, Rgb); 12] = [
    ("angry", [230, 40, 40]),
    ("anger", [230, 40, 40]),
    ("negative", [230, 40, 40]),
    ("disgust", [40, 140, 40]),
    ("contempt", [130, 100, 30]),
    ("fear", [160, 60, 160]),
    ("happy", [250, 210, 40]),
    ("positive", [250, 210, 40]),
    ("sad", [30, 120, 200]),
    ("sadness", [30, 120, 200]),
    ("surprise", [255, 140, 0]),
    ("neutral", [190, 190, 190]),
];

/// Colours of other labels, by label index (Tableau 10).
const FALLBACK: [Rgb; 10] = [
    [0x4e, 0x79, 0xa7],
    [0x59, 0xa1, 0x4f],
    [0xb0, 0x7a, 0xa1],
    [0x76, 0xb7, 0xb2],
    [0xed, 0xc9, 0x48],
    [0x9c, 0x75, 0x5f],
    [0xff, 0x9d, 0xa7],
    [0x79, 0x70, 0x6e],
    [0xf2, 0x8e, 0x2b],
    [0xe1, 0x57, 0x59],
];

/// The colour of `label`, the label number `index` of its model.
pub fn label_rgb(label: &str, index: usize) -> Rgb {
    LABEL_COLOURS
        .iter()
        .find(|(name, _)| *name == label)
        .map_or(FALLBACK[index % FALLBACK.len()], |(_, rgb)| *rgb)
}

/// `#rrggbb`, for HTML and SVG.
pub fn hex(rgb: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_emotion_has_one_colour_under_each_name() {
        assert_eq!(label_rgb("angry", 0), label_rgb("anger", 5));
        assert_eq!(label_rgb("sad", 4), label_rgb("sadness", 0));
        assert_eq!(hex(label_rgb("happy", 3)), "#fad228");
        assert_eq!(label_rgb("calm", 1), FALLBACK[1]);
        assert_eq!(label_rgb("calm", 11), FALLBACK[1]);
    }
}
