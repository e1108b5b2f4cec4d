//! Test-only strategies for the property (fuzz) tests of the parsers: any text, and valid inputs
//! damaged the ways real files are (cut short, junk inserted, numbers replaced by extreme ones).
//! `PROPTEST_CASES` sets how many inputs each property tries (`scripts/fuzz.sh` runs many).

use proptest::prelude::*;

/// Numbers that break naive readers, as text.
const EXTREMES: [&str; 14] = [
    "1e300",
    "-1e300",
    "1e12",
    "-50",
    "0",
    "-0",
    "NaN",
    "inf",
    "18446744073709551616",
    "99999999999999999999",
    "-1",
    "0.0000001",
    "4294967296",
    "",
];

/// Any text of up to `max` characters, control characters and newlines included.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// `valid` damaged in one of the ways files are: cut at a point, junk put in at a point, or one
/// of its numbers replaced by an extreme one.
pub fn damaged(valid: &'static str) -> impl Strategy<Value = String> {
    let cut = (0..=valid.len()).prop_map(move |at| valid[..floor_boundary(valid, at)].to_owned());
    let junk = (0..=valid.len(), any_text(16)).prop_map(move |(at, junk)| {
        let at = floor_boundary(valid, at);
        format!("{}{junk}{}", &valid[..at], &valid[at..])
    });
    let number = (0..64usize, 0..EXTREMES.len())
        .prop_map(move |(nth, extreme)| replace_nth_number(valid, nth, EXTREMES[extreme]));
    prop_oneof![cut, junk, number]
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text` with its `nth` run of digits (counting from 0, wrapping) replaced by `with`.
fn replace_nth_number(text: &str, nth: usize, with: &str) -> String {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, text.len()));
    }
    if runs.is_empty() {
        return text.to_owned();
    }
    let (from, to) = runs[nth % runs.len()];
    format!("{}{with}{}", &text[..from], &text[to..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_replaced_in_turn() {
        assert_eq!(replace_nth_number("a1b22c", 1, "X"), "a1bXc");
        assert_eq!(replace_nth_number("a1b22c", 2, "X"), "aXb22c");
        assert_eq!(replace_nth_number("abc", 0, "X"), "abc");
    }
}
