//! The videos of a run: files, folders searched recursively for videos, and `--list` files (one
//! path per line), each given the name its outputs take. Names mirror the inputs (a folder's
//! videos keep their sub-folders) and never collide; they depend only on the whole list, so every
//! worker of a sharded run agrees on them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// File extensions taken as videos when a folder is searched (compared without case).
pub const VIDEO_EXTENSIONS: [&str; 14] = [
    "mp4", "mov", "m4v", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "m2ts", "wmv", "flv",
    "3gp",
];

/// One video to annotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInput {
    /// The file (it may be missing or damaged: that is found out when it is read).
    pub path: PathBuf,
    /// Its outputs' name, relative to an output folder, without extension (`lesson1`,
    /// `term2/lesson1`, `lesson1-2`).
    pub name: PathBuf,
}

/// The videos named by `paths` (files, or folders searched for videos) and by the lines of
/// `list`, in that order, each file once.
///
/// # Errors
/// A list file that cannot be read, or a folder that cannot be searched.
pub fn gather(paths: &[PathBuf], list: Option<&Path>) -> Result<Vec<VideoInput>> {
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for path in paths {
        if path.is_dir() {
            let videos = videos_in(path)?;
            if videos.is_empty() {
                bail!(
                    "{}: a folder with no videos in it (searched for {}); give video files or a folder holding them",
                    path.display(),
                    VIDEO_EXTENSIONS.join(", ")
                );
            }
            for video in videos {
                let relative = video.strip_prefix(path).unwrap_or(&video).to_owned();
                found.push((video, relative.with_extension("")));
            }
        } else {
            found.push((path.clone(), stem(path)));
        }
    }
    if let Some(list) = list {
        let text = std::fs::read_to_string(list).with_context(|| {
            format!(
                "{}: cannot read the list of videos; give a text file with one path per line",
                list.display()
            )
        })?;
        let base = list.parent().unwrap_or(Path::new(""));
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Relative paths in a list are relative to the list's folder.
            let path = base.join(line);
            let name = stem(&path);
            found.push((path, name));
        }
    }
    let mut seen_files = HashSet::new();
    found.retain(|(path, _)| seen_files.insert(path.canonicalize().unwrap_or(path.clone())));
    Ok(unique_names(found))
}

/// The file name without its extension.
fn stem(path: &Path) -> PathBuf {
    PathBuf::from(path.file_stem().unwrap_or(path.as_os_str()))
}

/// Gives each later duplicate of a name the suffix `-2`, `-3`, ... (skipping names taken).
fn unique_names(found: Vec<(PathBuf, PathBuf)>) -> Vec<VideoInput> {
    let key = |name: &Path| name.to_string_lossy().to_lowercase();
    let mut taken: HashSet<String> = found.iter().map(|(_, name)| key(name)).collect();
    let mut used = HashSet::new();
    found
        .into_iter()
        .map(|(path, name)| {
            let name = if used.insert(key(&name)) {
                name
            } else {
                let base = name.to_string_lossy().into_owned();
                let free = (2..)
                    .map(|n| PathBuf::from(format!("{base}-{n}")))
                    .find(|candidate| !taken.contains(&key(candidate)))
                    .unwrap_or_else(|| name.clone());
                taken.insert(key(&free));
                used.insert(key(&free));
                free
            };
            VideoInput { path, name }
        })
        .collect()
}

/// The videos under `folder`, recursively, in name order.
fn videos_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut videos = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("{}: cannot search the folder for videos", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            videos.extend(videos_in(&entry)?);
        } else if is_video_name(&entry) {
            videos.push(entry);
        }
    }
    Ok(videos)
}

fn is_video_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_searched_and_names_mirror_them() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("term");
        std::fs::create_dir_all(root.join("week1"))?;
        for file in ["a.mp4", "notes.txt", "week1/b.MOV", "week1/a.mkv"] {
            std::fs::write(root.join(file), b"")?;
        }
        let list = dir.path().join("list.txt");
        std::fs::write(&list, "# lessons\nterm/a.mp4\n\nother/a.mp4\n")?;
        let inputs = gather(std::slice::from_ref(&root), Some(&list))?;
        let names: Vec<_> = inputs.iter().map(|i| i.name.clone()).collect();
        assert_eq!(
            names,
            [
                PathBuf::from("a"),
                PathBuf::from("week1/a"),
                PathBuf::from("week1/b"),
                // term/a.mp4 again is the same file: listed once. other/a.mp4 is another.
                PathBuf::from("a-2"),
            ]
        );
        assert_eq!(inputs[3].path, dir.path().join("other/a.mp4"));
        Ok(())
    }

    #[test]
    fn duplicate_names_get_free_suffixes() {
        let found = ["x/a.mp4", "y/a.mp4", "a-2.mp4", "z/A.mp4"]
            .map(|p| (PathBuf::from(p), stem(Path::new(p))))
            .to_vec();
        let names: Vec<_> = unique_names(found)
            .into_iter()
            .map(|i| i.name.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a", "a-3", "a-2", "A-4"]);
    }

    #[test]
    fn a_folder_without_videos_is_named_as_a_folder() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("notes.txt"), b"")?;
        let message = gather(&[dir.path().to_owned()], None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("a folder with no videos in it"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn an_unreadable_list_is_refused() {
        let error = gather(&[], Some(Path::new("/no/such/list.txt")));
        assert!(error.is_err_and(|e| e.to_string().contains("one path per line")));
    }
}
