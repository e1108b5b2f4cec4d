//! Bad input gives a one-line error naming the file and the fix, a non-zero exit, no panic and
//! no partial output.

use assert_cmd::Command;

use crate::util::{assert_clean_failure, fer_split, fer_subset, video};

fn emolens() -> Command {
    Command::cargo_bin("emolens").expect("binary built")
}

fn train_args(data: &str, val: &str, output: &str) -> Vec<String> {
    [
        "train",
        "--data",
        data,
        "--val",
        val,
        "-o",
        output,
        "--epochs",
        "1",
        "--max-steps",
        "1",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn missing_and_empty_data_folders_are_named() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    let model = out.path().join("m.onnx");
    let missing = out.path().join("no-such-folder");
    let output = emolens()
        .args(train_args(
            missing.to_str().unwrap_or_default(),
            "0.2",
            model.to_str().unwrap_or_default(),
        ))
        .output()?;
    assert_clean_failure(&output, &["no-such-folder", "not found"]);

    let empty = tempfile::tempdir()?;
    let output = emolens()
        .args(train_args(
            empty.path().to_str().unwrap_or_default(),
            "0.2",
            model.to_str().unwrap_or_default(),
        ))
        .output()?;
    assert_clean_failure(&output, &["no images found"]);
    assert!(!model.exists(), "a model was written for a failed run");
    Ok(())
}

#[test]
fn broken_image_is_named() -> anyhow::Result<()> {
    let data = fer_subset("Training", 2);
    std::fs::write(
        data.path().join("happy").join("zz-broken.png"),
        b"not an image",
    )?;
    let out = tempfile::tempdir()?;
    let model = out.path().join("m.onnx");
    let output = emolens()
        .args(train_args(
            data.path().to_str().unwrap_or_default(),
            "0.5",
            model.to_str().unwrap_or_default(),
        ))
        .output()?;
    assert_clean_failure(&output, &["zz-broken.png", "cannot be read as an image"]);
    assert!(!model.exists());
    Ok(())
}

#[test]
fn unknown_validation_class_is_named() -> anyhow::Result<()> {
    let data = fer_subset("Training", 2);
    let val = fer_subset("PublicTest", 1);
    std::fs::rename(val.path().join("sad"), val.path().join("bored"))?;
    let out = tempfile::tempdir()?;
    let model = out.path().join("m.onnx");
    let output = emolens()
        .args(train_args(
            data.path().to_str().unwrap_or_default(),
            val.path().to_str().unwrap_or_default(),
            model.to_str().unwrap_or_default(),
        ))
        .output()?;
    assert_clean_failure(&output, &["unknown class `bored`"]);
    Ok(())
}

#[test]
fn unwritable_output_fails_before_training() -> anyhow::Result<()> {
    let split = fer_split("PublicTest");
    let output = emolens()
        .args(train_args(
            split.to_str().unwrap_or_default(),
            "0.2",
            "/nonexistent-dir/m.onnx",
        ))
        .output()?;
    assert_clean_failure(&output, &["/nonexistent-dir", "does not exist"]);
    let output = emolens()
        .args([
            "train", "--data", "x", "--val", "1.5", "-o", "m.onnx", "--epochs", "1",
        ])
        .output()?;
    assert_clean_failure(&output, &["--val fraction 1.5 is out of range"]);
    Ok(())
}

#[test]
fn recipe_options_out_of_range_are_refused() -> anyhow::Result<()> {
    let data = fer_subset("PrivateTest", 1);
    let out = tempfile::tempdir()?;
    let model = out.path().join("m.onnx");
    let ckplus = crate::util::shared_data().join("ckplus");
    let aus = ckplus.join("ckplus_facs_aus_327seq.csv");
    for (extra, needle) in [
        (vec!["--mixup", "11"], "--mixup 11 is out of range"),
        (vec!["--mixup=-1"], "--mixup -1 is out of range"),
        (vec!["--erase", "1.5"], "--erase 1.5 is out of range"),
        (
            vec!["--width", "2"],
            "--width 2 is out of range: use 4 to 128",
        ),
        (
            vec!["--average-last", "2"],
            "--average-last 2 is out of range: use 0 (off) or 2 to --epochs (1)",
        ),
        (
            vec!["--mixup", "0.2", "--aus", aus.to_str().unwrap_or_default()],
            "--mixup does not blend action-unit targets",
        ),
    ] {
        let mut args = train_args(
            data.path().to_str().unwrap_or_default(),
            "0.5",
            model.to_str().unwrap_or_default(),
        );
        args.extend(extra.into_iter().map(String::from));
        assert_clean_failure(&emolens().args(args).output()?, &[needle]);
    }
    assert!(!model.exists());
    Ok(())
}

#[test]
fn init_weights_that_cannot_serve_are_named() -> anyhow::Result<()> {
    let data = fer_subset("Training", 2);
    let out = tempfile::tempdir()?;
    let model = out.path().join("m.onnx");
    let with_init = |init: &std::path::Path| {
        let mut args = train_args(
            data.path().to_str().unwrap_or_default(),
            "0.5",
            model.to_str().unwrap_or_default(),
        );
        args.extend(["--init".to_owned(), init.display().to_string()]);
        emolens().args(args).output()
    };
    let missing = out.path().join("no-such.bpk");
    assert_clean_failure(&with_init(&missing)?, &["no-such.bpk", "not found"]);
    let onnx = crate::util::default_model();
    assert_clean_failure(
        &with_init(&onnx)?,
        &[
            emolens::util::DEFAULT_MODEL_FILE,
            "an .onnx model cannot serve",
        ],
    );
    assert!(!model.exists());
    Ok(())
}

#[test]
fn missing_onnx_runtime_says_how_to_get_it() -> anyhow::Result<()> {
    let data = fer_subset("PrivateTest", 1);
    let output = emolens()
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .args([
            "evaluate",
            "--data",
            data.path().to_str().unwrap_or_default(),
        ])
        .output()?;
    assert_clean_failure(
        &output,
        &["ONNX Runtime library not found", "scripts/setup.sh"],
    );
    Ok(())
}

/// A tiny tmpfs mounted for one test and unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// A `size` tmpfs; `None` when this user may not mount (not root).
    fn mount(size: &str) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()?;
        Ok(mounted.success().then_some(Self { dir }))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_named_and_leaves_no_partial_file() -> anyhow::Result<()> {
    let Some(disk) = TinyDisk::mount("200k")? else {
        // Mounting needs root: CI runs as root, so there this must not be skipped.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root to mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return Ok(());
    };
    let full = disk.dir.path();
    let input = video("pyfeat_WolfgangLanger_Pexels.mp4");
    let elsewhere = tempfile::tempdir()?;
    let cases = [
        (
            full.join("out.mp4"),
            elsewhere.path().join("faces.jsonl"),
            "out.mp4",
        ),
        (
            elsewhere.path().join("out.mp4"),
            full.join("big.jsonl"),
            "big.jsonl",
        ),
    ];
    for (video_out, records_out, named) in cases {
        // The records of the second case are made larger than the disk by a CSV beside them.
        let output = Command::cargo_bin("emolens")?
            .args(["annotate", "--quiet"])
            .arg(&input)
            .arg("-o")
            .arg(&video_out)
            .arg("--json")
            .arg(&records_out)
            .arg("--csv")
            .arg(records_out.with_extension("csv"))
            .output()?;
        assert_clean_failure(&output, &[named, "the disk is full"]);
        assert!(
            !video_out.exists() && !records_out.exists(),
            "nothing presented"
        );
        let partials = crate::util::partial_files(full);
        assert!(partials.is_empty(), "partial files left: {partials:?}");
    }
    Ok(())
}

#[test]
fn a_model_that_is_not_onnx_is_named_with_its_cause_told_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("notes.onnx");
    std::fs::write(&model, "hello\n")?;
    let output = Command::cargo_bin("emolens")?
        .args(["annotate", "--quiet"])
        .arg(video("pyfeat_single_face.mp4"))
        .arg("-o")
        .arg(dir.path().join("out.mp4"))
        .arg("--model")
        .arg(&model)
        .output()?;
    assert_clean_failure(&output, &["notes.onnx", "Protobuf parsing failed"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Protobuf parsing failed").count(),
        1,
        "{stderr}"
    );
    Ok(())
}
