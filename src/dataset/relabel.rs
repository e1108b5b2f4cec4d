//! A dataset seen through another label set, for scoring a model on data labelled by other
//! people: classes are matched by name, ignoring case and across the nouns and adjectives that
//! datasets use for one emotion (CK+'s `anger` is FER2013's `angry`), and images of classes the
//! label set lacks (CK+'s `contempt` for a FER2013 model) are left out and counted.

use super::ferplus::VOTE_COLUMNS;
use super::Dataset;

/// The name a class is matched by: lower case, with a FER+ emotion name (the nouns that CK+
/// uses too: `anger`, `happiness`, `sadness`) replaced by its FER2013 name.
fn class_key(name: &str) -> String {
    let lower = name.to_lowercase();
    VOTE_COLUMNS
        .iter()
        .find(|(column, _)| *column == lower)
        .map_or(lower, |(_, fer)| (*fer).to_owned())
}

/// Images of one class that a label set has no class for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The data's class name.
    pub class: String,
    /// How many images it had.
    pub images: usize,
}

impl Dataset {
    /// The dataset with `classes` as its label set: each of its classes is matched to one of
    /// `classes` by name or synonym, and the images of classes without a match are left out
    /// (returned as counts, in the data's class order). Soft labels follow their classes.
    pub fn relabel_to(&self, classes: &[String]) -> (Self, Vec<LeftOut>) {
        let keys: Vec<String> = classes.iter().map(|c| class_key(c)).collect();
        let target: Vec<Option<usize>> = self
            .classes
            .iter()
            .map(|c| keys.iter().position(|k| *k == class_key(c)))
            .collect();
        let (kept, labels): (Vec<usize>, Vec<usize>) = self
            .labels
            .iter()
            .enumerate()
            .filter_map(|(i, &label)| target[label].map(|new| (i, new)))
            .unzip();
        let mut out = self.subset(&kept);
        out.labels = labels;
        out.classes = classes.to_vec();
        out.resized = self.resized;
        out.soft = out.soft.map(|soft| {
            soft.chunks(self.classes.len())
                .flat_map(|row| {
                    let mut moved = vec![0.0; classes.len()];
                    for (&share, to) in row.iter().zip(&target) {
                        if let Some(to) = to {
                            moved[*to] += share;
                        }
                    }
                    moved
                })
                .collect()
        });
        let left_out = self
            .classes
            .iter()
            .zip(&target)
            .zip(self.class_counts())
            .filter(|((_, to), images)| to.is_none() && *images > 0)
            .map(|((class, _), images)| LeftOut {
                class: class.clone(),
                images,
            })
            .collect();
        (out, left_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ckplus_classes_map_onto_fer2013_labels_and_contempt_is_left_out() {
        let mut ck = Dataset::new(names(&["anger", "contempt", "Happy", "sadness"]), 1);
        for (label, value) in [(0, 10), (1, 11), (2, 12), (3, 13), (1, 14)] {
            ck.push(&[value], label, format!("img{value}"));
        }
        let fer = names(&["angry", "disgust", "happy", "sad", "neutral"]);
        let (mapped, left_out) = ck.relabel_to(&fer);
        assert_eq!(mapped.classes, fer);
        assert_eq!(mapped.labels, [0, 2, 3]);
        assert_eq!(mapped.pixels, [10, 12, 13]);
        assert_eq!(mapped.sources, ["img10", "img12", "img13"]);
        assert_eq!(
            left_out,
            [LeftOut {
                class: "contempt".into(),
                images: 2
            }]
        );
    }

    #[test]
    fn soft_labels_follow_their_classes() {
        let mut data = Dataset::new(names(&["sad", "happy"]), 1);
        data.push(&[0], 1, "a".into());
        data.soft = Some(vec![0.25, 0.75]);
        let (mapped, left_out) = data.relabel_to(&names(&["happy", "neutral", "sad"]));
        assert!(left_out.is_empty());
        assert_eq!(mapped.labels, [0]);
        assert_eq!(mapped.soft, Some(vec![0.75, 0.0, 0.25]));
    }
}
