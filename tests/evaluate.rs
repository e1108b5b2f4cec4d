//! `emolens evaluate` with the shipped model on real FER2013 images.

use std::ffi::OsStr;
use std::path::Path;

use assert_cmd::Command;
use emolens::dataset::FER2013_LABELS;

use crate::util::{
    assert_clean_failure, default_model, fer_split, fer_subset, os, repo_file, succeeded,
};

#[test]
fn default_model_reports_metrics_json_and_confusion_image() -> anyhow::Result<()> {
    default_model();
    let data = fer_subset("PrivateTest", 10);
    let out = tempfile::tempdir()?;
    let json = out.path().join("eval.json");
    let png = out.path().join("confusion.png");
    let output = Command::cargo_bin("emolens")?
        .args([
            "evaluate",
            "--data",
            data.path().to_str().unwrap_or_default(),
            "--tta",
            "2",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--confusion")
        .arg(&png)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("accuracy") && stdout.contains("confusion matrix"),
        "{stdout}"
    );

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let accuracy = report["accuracy"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&accuracy));
    // 70 images, 7 classes: a trained model is well above chance (1/7) even on so few.
    assert!(accuracy > 0.3, "accuracy {accuracy}");
    assert_eq!(report["images"], 70);
    assert_eq!(report["tta"], 2);
    assert_eq!(report["labels"].as_array().map(Vec::len), Some(7));
    assert_eq!(report["per_class"]["happy"]["support"], 10);
    for key in ["precision", "recall", "f1"] {
        assert!(report["per_class"]["happy"][key].is_f64(), "{key}");
        assert!(report["macro"][key].is_f64(), "{key}");
    }
    let confusion_total: u64 = report["confusion"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(confusion_total, 70);
    assert!(std::fs::metadata(&png)?.len() > 1000);
    Ok(())
}

/// The default model is the int8 copy of a trained float model (scripts/quantize-model.sh): on
/// FER2013 PublicTest (where epochs are chosen; never PrivateTest) it scores within a point of
/// the model it was made from, and gets each class right about as often.
#[test]
fn the_int8_default_model_scores_as_its_float_source() -> anyhow::Result<()> {
    let int8 = default_model();
    let described = succeeded(
        &Command::cargo_bin("emolens")?
            .args([os("inspect"), int8.as_os_str(), os("--json")])
            .output()?,
    );
    let described: serde_json::Value = serde_json::from_str(&described)?;
    let source = described["quantization"]["source"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the default model has no quantization record"))?;
    let float = repo_file(&format!("models/{source}"));
    let public = fer_split("PublicTest");
    let score = |model: &Path| -> anyhow::Result<(f64, Vec<u64>)> {
        let (_, report) = evaluate_json(&public, &[os("--model"), model.as_os_str()])?;
        let diagonal = report["confusion"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, row)| row[i].as_u64().unwrap_or(0))
            .collect();
        Ok((f64_of(&report["accuracy"]), diagonal))
    };
    let (int8_accuracy, int8_hits) = score(&int8)?;
    let (float_accuracy, float_hits) = score(&float)?;
    assert!(
        (int8_accuracy - float_accuracy).abs() < 0.01,
        "int8 {int8_accuracy:.4} against float {float_accuracy:.4}"
    );
    for (class, (a, b)) in int8_hits.iter().zip(&float_hits).enumerate() {
        assert!(
            a.abs_diff(*b) <= 3 + b / 50,
            "class {class}: {a} right with int8, {b} with float"
        );
    }
    Ok(())
}

#[test]
fn a_fer2013_model_scores_ckplus_on_the_classes_they_share() -> anyhow::Result<()> {
    default_model();
    let out = tempfile::tempdir()?;
    let json = out.path().join("eval.json");
    let output = Command::cargo_bin("emolens")?
        .arg("evaluate")
        .arg("--data")
        .arg(crate::util::shared_data().join("ckplus"))
        .arg("--json")
        .arg(&json)
        .output()?;
    succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("54 images of class `contempt` are left out"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    assert_eq!(report["images"], 981 - 54);
    // CK+'s `anger` and `sadness` are FER2013's `angry` and `sad`.
    assert_eq!(report["per_class"]["angry"]["support"], 135);
    assert_eq!(report["per_class"]["sad"]["support"], 84);
    assert_eq!(report["per_class"]["neutral"]["support"], 0);
    Ok(())
}

/// Runs `emolens evaluate --data DIR` with `extra` arguments and checks it fails cleanly.
fn assert_evaluate_fails(dir: &str, extra: &[&str], needles: &[&str]) -> anyhow::Result<()> {
    let output = Command::cargo_bin("emolens")?
        .args(["evaluate", "--data", dir])
        .args(extra)
        .output()?;
    assert_clean_failure(&output, needles);
    Ok(())
}

#[test]
fn bad_evaluate_arguments_are_explained() -> anyhow::Result<()> {
    let data = fer_subset("PrivateTest", 1);
    let dir = data.path().to_str().unwrap_or_default().to_owned();
    assert_evaluate_fails(&dir, &["--tta", "9"], &["--tta 9 is out of range"])?;
    assert_evaluate_fails(
        &dir,
        &["--model", "/nonexistent/model.onnx"],
        &["/nonexistent/model.onnx", "model not found"],
    )?;
    let not_a_model = tempfile::NamedTempFile::new()?;
    std::fs::write(not_a_model.path(), b"garbage")?;
    let garbage = not_a_model.path().to_str().unwrap_or_default();
    assert_evaluate_fails(&dir, &["--model", garbage], &["loading model"])?;
    Ok(())
}

/// `emolens evaluate` on `data` with `extra` arguments and `--json`; returns stdout and the JSON.
fn evaluate_json(data: &Path, extra: &[&OsStr]) -> anyhow::Result<(String, serde_json::Value)> {
    let out = tempfile::tempdir()?;
    let json = out.path().join("eval.json");
    let output = Command::cargo_bin("emolens")?
        .arg("evaluate")
        .arg("--data")
        .arg(data)
        .args(extra)
        .arg("--json")
        .arg(&json)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Ok((stdout, serde_json::from_slice(&std::fs::read(&json)?)?))
}

fn f64_of(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn default_model_reports_the_valence_view() -> anyhow::Result<()> {
    default_model();
    let data = fer_subset("PrivateTest", 50);
    let (stdout, report) = evaluate_json(data.path(), &[])?;
    assert!(stdout.contains("view valence (350 images)"), "{stdout}");

    let valence = &report["views"]["valence"];
    let groups: Vec<&str> = valence["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(groups, ["negative", "neutral", "positive", "surprise"]);
    let confusion: Vec<Vec<u64>> = serde_json::from_value(valence["confusion"].clone())?;
    let total: u64 = confusion.iter().flatten().sum();
    let correct: u64 = (0..confusion.len()).map(|i| confusion[i][i]).sum();
    assert_eq!(total, 350);
    assert_eq!(valence["images"], 350);
    assert_eq!(valence["dropped"], 0);
    let accuracy = f64_of(&valence["accuracy"]);
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert!((accuracy - correct as f64 / total as f64).abs() < 1e-12);
    // Merging the four negative labels can only turn mistakes into hits.
    assert!(accuracy >= f64_of(&report["accuracy"]));
    // 200 negative images (angry, disgust, fear, sad), 50 of each other group.
    assert_eq!(valence["per_group"]["negative"]["support"], 200);
    assert_eq!(valence["per_group"]["positive"]["support"], 50);
    // The printed matrix is the JSON one: the positive row reads the same.
    let positive_row = confusion[2]
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let printed = stdout
        .split("view valence")
        .nth(1)
        .and_then(|view| {
            view.lines()
                .rev()
                .find(|l| l.trim_start().starts_with("positive"))
        })
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "));
    assert_eq!(printed.as_deref(), Some(positive_row.as_str()), "{stdout}");
    Ok(())
}

/// Group `a` for even image numbers, `b` for odd ones (FER2013 files are `Split_NUMBER.png`).
fn parity_group(file: &Path) -> &'static str {
    let digits: String = file
        .file_stem()
        .and_then(OsStr::to_str)
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if digits.parse::<u64>().unwrap_or(0) % 2 == 0 {
        "a"
    } else {
        "b"
    }
}

#[test]
fn groups_csv_scores_each_group_and_the_gap() -> anyhow::Result<()> {
    default_model();
    let data = fer_subset("PrivateTest", 40);
    // Paths relative to the CSV's folder (the data folder); the first image of each class gets
    // no row, and one row names an image that is not there.
    let mut csv = String::from("path,parity,site\n");
    let mut with_row = 0;
    for class in FER2013_LABELS {
        let mut files: Vec<_> = std::fs::read_dir(data.path().join(class))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort();
        for file in files.iter().skip(1) {
            let name = file.file_name().and_then(OsStr::to_str).unwrap_or_default();
            csv.push_str(&format!("{class}/{name},{},lab\n", parity_group(file)));
            with_row += 1;
        }
    }
    csv.push_str("happy/not-there.png,a,lab\n");
    let groups = data.path().join("groups.csv");
    std::fs::write(&groups, csv)?;

    let (stdout, report) = evaluate_json(data.path(), &["--groups".as_ref(), groups.as_ref()])?;
    assert!(stdout.contains("largest accuracy gap"), "{stdout}");
    assert_eq!(with_row, 280 - 7);
    let rows = &report["group_rows"];
    assert_eq!(rows["matched"], with_row);
    assert_eq!(rows["images_without_row"], 7);
    assert_eq!(rows["rows_without_image"], 1);

    let parity = &report["groups"]["parity"];
    let (a, b) = (&parity["values"]["a"], &parity["values"]["b"]);
    let images = |g: &serde_json::Value| g["images"].as_u64().unwrap_or(0);
    assert!(images(a) > 0 && images(b) > 0);
    assert_eq!(images(a) + images(b), with_row);
    for group in [a, b] {
        for key in ["accuracy", "macro_f1"] {
            assert!((0.0..=1.0).contains(&f64_of(&group[key])), "{key}: {group}");
        }
        assert!(
            (0.0..=1.0).contains(&f64_of(&group["views"]["valence"])),
            "{group}"
        );
    }
    let gap = &parity["largest_gap"];
    assert_eq!(gap["metric"], "accuracy");
    let between = [&gap["between"][0], &gap["between"][1]];
    let accuracy_of = |name: &serde_json::Value| {
        f64_of(&parity["values"][name.as_str().unwrap_or("")]["accuracy"])
    };
    let expected = accuracy_of(between[0]) - accuracy_of(between[1]);
    assert!((f64_of(&gap["gap"]) - expected).abs() < 1e-12, "{gap}");
    assert!((expected - (f64_of(&a["accuracy"]) - f64_of(&b["accuracy"])).abs()).abs() < 1e-12);

    // A constant column: one group holding every image with a row, no gap.
    let site = &report["groups"]["site"];
    assert_eq!(site["values"]["lab"]["images"], with_row);
    assert!(site["largest_gap"].is_null());
    Ok(())
}

#[test]
fn bad_groups_csv_fails_cleanly() -> anyhow::Result<()> {
    let data = fer_subset("PrivateTest", 1);
    let dir = data.path().to_str().unwrap_or_default().to_owned();
    let groups = data.path().join("groups.csv");
    let file = groups.to_str().unwrap_or_default();
    let cases: [(&str, &[&str]); 4] = [
        ("", &["groups.csv", "empty file", "header"]),
        (
            "image,gender\nhappy/x.png,f\n",
            &["groups.csv, line 1", "no `path` column"],
        ),
        (
            "path,gender\nhappy/x.png,f\nhappy/y.png\n",
            &[
                "groups.csv, line 3",
                "1 fields where the header has 2",
                "fix or delete",
            ],
        ),
        (
            "path,gender\nnowhere/x.png,f\n",
            &["groups.csv", "none of its 1 rows names an image"],
        ),
    ];
    for (text, needles) in cases {
        std::fs::write(&groups, text)?;
        assert_evaluate_fails(&dir, &["--groups", file], needles)?;
    }
    assert_evaluate_fails(
        &dir,
        &["--groups", "/nonexistent/groups.csv"],
        &["/nonexistent/groups.csv", "not found"],
    )?;
    Ok(())
}
