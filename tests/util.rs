//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use emolens::dataset::FER2013_LABELS;

/// `../shared/data` beside the repository; panics with the reason when it is missing.
pub fn shared_data() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(
        path.join("fer2013").is_dir(),
        "{} is missing: these tests need the shared datasets (see ../shared/data/README.md)",
        path.display()
    );
    path
}

/// A FER2013 split folder.
pub fn fer_split(split: &str) -> PathBuf {
    shared_data().join("fer2013").join(split)
}

/// A folder with the first `per_class` images of each class of a FER2013 split, as symlinks.
pub fn fer_subset(split: &str, per_class: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for class in FER2013_LABELS {
        let source = fer_split(split).join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
            .map(|e| e.expect("folder entry").path())
            .collect();
        files.sort();
        let target = dir.path().join(class);
        std::fs::create_dir(&target).expect("class folder");
        for file in files.iter().take(per_class) {
            std::os::unix::fs::symlink(file, target.join(file.file_name().expect("name")))
                .expect("symlink");
        }
    }
    dir
}

/// The shipped default model; panics when it is not in the repository.
pub fn default_model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(emolens::util::DEFAULT_MODEL_FILE);
    assert!(
        path.is_file(),
        "{} is missing: the default model must be committed",
        path.display()
    );
    path
}

/// Asserts that a failed command said something useful and did not panic.
pub fn assert_clean_failure(output: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    }
}
