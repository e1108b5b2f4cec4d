//! Who is in each image, so that cross-validation keeps all images of one person in one fold
//! (frames of a person in both training and test data would flatter the scores).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The subject of a CK+ image from its file name `S<subject>_<sequence>_<frame>.png`
/// (e.g. `S005` for `.../anger/S005_001_00000011.png`); `None` for other names.
pub fn ckplus_subject(source: &str) -> Option<&str> {
    ckplus_sequence(source).map(|(subject, _)| subject)
}

/// Subject and sequence of a CK+ image from its file name: `("S005", "001")` for
/// `S005_001_00000011.png`; `None` for other names.
pub fn ckplus_sequence(source: &str) -> Option<(&str, &str)> {
    let name = source.rsplit(['/', '\\']).next()?;
    let mut parts = name.split('_');
    let (subject, sequence, _frame) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(subject.strip_prefix('S')?) && digits(sequence)).then_some((subject, sequence))
}

/// Deals images to `k` folds so that no subject is in two folds. Images whose subject is
/// unknown (`None`) count as subjects of their own. Subjects go, largest first (ties in a
/// seeded random order), to the fold with the fewest images so far, so the folds come out
/// about equal. Returns the fold of each image.
pub fn subject_folds(subjects: &[Option<&str>], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut groups = shuffled_subjects(subjects, seed);
    // Stable: equal sizes keep their shuffled order.
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut fold_of = vec![0; subjects.len()];
    let mut sizes = vec![0usize; k];
    for group in groups {
        let fold = (0..k).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
        sizes[fold] += group.len();
        for image in group {
            fold_of[image] = fold;
        }
    }
    fold_of
}

/// Picks whole subjects, in a seeded random order, until about `fraction` of the images are
/// picked (at least one subject, never all of them when there are two or more). Images whose
/// subject is unknown count as subjects of their own. Returns whether each image is picked.
pub fn subject_holdout(subjects: &[Option<&str>], fraction: f64, seed: u64) -> Vec<bool> {
    let groups = shuffled_subjects(subjects, seed);
    let wanted = (subjects.len() as f64 * fraction).round() as usize;
    let most_groups = groups.len().saturating_sub(1).max(1);
    let mut picked = vec![false; subjects.len()];
    let mut taken = 0;
    for group in groups.iter().take(most_groups) {
        if taken > 0 && taken + group.len() / 2 >= wanted {
            break;
        }
        taken += group.len();
        for &image in group {
            picked[image] = true;
        }
    }
    picked
}

/// The images of each subject (an image of unknown subject alone), in a seeded random order.
fn shuffled_subjects(subjects: &[Option<&str>], seed: u64) -> Vec<Vec<usize>> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut loners = Vec::new();
    for (image, subject) in subjects.iter().enumerate() {
        match subject {
            Some(s) => members.entry(s).or_default().push(image),
            None => loners.push(vec![image]),
        }
    }
    let mut groups: Vec<Vec<usize>> = members.into_values().chain(loners).collect();
    groups.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckplus_names_give_their_subject() {
        assert_eq!(
            ckplus_subject("ckplus/anger/S005_001_00000011.png"),
            Some("S005")
        );
        assert_eq!(ckplus_subject("S138_008_00000008.png"), Some("S138"));
        assert_eq!(ckplus_subject("fer/Training/happy/123.png"), None);
        assert_eq!(ckplus_subject("Sam_001.png"), None);
        assert_eq!(ckplus_subject("S12.png"), None);
    }

    #[test]
    fn folds_never_share_a_subject_and_are_balanced() {
        let names: Vec<String> = (0..40)
            .flat_map(|s| (0..(1 + s % 4)).map(move |f| format!("S{s:03}_001_{f:08}.png")))
            .collect();
        let mut subjects: Vec<Option<&str>> = names.iter().map(|n| ckplus_subject(n)).collect();
        subjects.extend([None, None, None]);
        let folds = subject_folds(&subjects, 5, 7);
        let mut fold_of_subject: BTreeMap<&str, usize> = BTreeMap::new();
        for (subject, fold) in subjects.iter().zip(&folds) {
            if let Some(s) = subject {
                let first = *fold_of_subject.entry(s).or_insert(*fold);
                assert_eq!(first, *fold, "{s} is in two folds");
            }
        }
        let mut sizes = [0usize; 5];
        for &f in &folds {
            sizes[f] += 1;
        }
        let (min, max) = (sizes.iter().min(), sizes.iter().max());
        assert!(
            max.zip(min).is_some_and(|(a, b)| a - b <= 4),
            "balanced: {sizes:?}"
        );
        assert_eq!(folds, subject_folds(&subjects, 5, 7), "reproducible");
    }

    #[test]
    fn holdout_takes_whole_subjects_near_the_fraction() {
        let names: Vec<String> = (0..30)
            .flat_map(|s| (0..3).map(move |f| format!("S{s:03}_001_{f:08}.png")))
            .collect();
        let subjects: Vec<Option<&str>> = names.iter().map(|n| ckplus_subject(n)).collect();
        let picked = subject_holdout(&subjects, 0.1, 3);
        assert_eq!(picked.iter().filter(|&&p| p).count(), 9, "3 of 30 subjects");
        for frames in picked.chunks(3) {
            assert!(frames.iter().all(|&p| p == frames[0]), "a subject is split");
        }
        assert_eq!(picked, subject_holdout(&subjects, 0.1, 3), "reproducible");
        let one = [Some("S001"), Some("S001")];
        assert_eq!(
            subject_holdout(&one, 0.5, 1),
            [true, true],
            "at least one subject"
        );
        let two = [Some("S001"), Some("S002")];
        assert_eq!(
            subject_holdout(&two, 0.9, 1).iter().filter(|&&p| p).count(),
            1,
            "never every subject"
        );
    }
}
