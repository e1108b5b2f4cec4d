//! `emolens evaluate` with the shipped model on real FER2013 images.

use assert_cmd::Command;

use crate::util::{assert_clean_failure, default_model, fer_subset};

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
