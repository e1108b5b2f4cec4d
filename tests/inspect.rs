//! `emolens inspect` on the shipped model (text, JSON, the first-layer filter image) and on
//! files that are not emolens models.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use emolens::dataset::FER2013_LABELS;
use emolens::inspect::filters::grid_size;
use emolens::model_meta::{Head, HeadKind, ModelMeta, Preprocess, Views};
use emolens::protobuf::{put_bytes_field as len_field, put_varint_field as int_field};

use crate::util::{assert_clean_failure, default_model, succeeded};

fn inspect(args: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
    Ok(Command::cargo_bin("emolens")?
        .arg("inspect")
        .args(args)
        .output()?)
}

/// `[width, height]` from a PNG's IHDR chunk.
fn png_size(path: &Path) -> anyhow::Result<[usize; 2]> {
    let bytes = std::fs::read(path)?;
    anyhow::ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok([be(16) as usize, be(20) as usize])
}

#[test]
fn shipped_model_is_described_in_text() -> anyhow::Result<()> {
    let model = default_model();
    let stdout = succeeded(&inspect(&[model.as_os_str()])?);
    for label in FER2013_LABELS {
        assert!(stdout.contains(label), "no label {label}: {stdout}");
    }
    for needle in [
        "input: ",
        "resize to 48x48",
        "(softmax, 7 labels)",
        "views:",
        "provenance:",
        "validation accuracy",
        "graph: ",
        "Conv",
        "parameters",
    ] {
        assert!(stdout.contains(needle), "no `{needle}`: {stdout}");
    }
    Ok(())
}

#[test]
fn shipped_model_is_described_in_json() -> anyhow::Result<()> {
    let model = default_model();
    let stdout = succeeded(&inspect(&[model.as_os_str(), "--json".as_ref()])?);
    let json: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(json["preprocess"]["size"], serde_json::json!([48, 48]));
    assert_eq!(json["inputs"][0]["shape"][1], 1);
    assert_eq!(json["heads"][0]["kind"], "softmax");
    assert_eq!(json["heads"][0]["labels"].as_array().map(Vec::len), Some(7));
    assert!(json["provenance"]["dataset"].is_string());
    assert!(json["graph"]["nodes"].as_u64().unwrap_or(0) > 0);
    assert!(json["graph"]["parameters"].as_u64().unwrap_or(0) > 100_000);
    assert!(json.get("filters").is_none());
    Ok(())
}

#[test]
fn filters_image_has_one_square_per_first_layer_filter() -> anyhow::Result<()> {
    let model = default_model();
    let out = tempfile::tempdir()?;
    let png = out.path().join("filters.png");
    let stdout = succeeded(&inspect(&[
        model.as_os_str(),
        "--json".as_ref(),
        "--filters".as_ref(),
        png.as_os_str(),
    ])?);
    let json: serde_json::Value = serde_json::from_str(&stdout)?;
    // The default network (width 24) starts with 24 3x3 filters on the gray image.
    assert_eq!(json["filters"]["filters"], 24);
    assert_eq!(json["filters"]["in_channels"], 1);
    assert_eq!(json["filters"]["kernel"], serde_json::json!([3, 3]));
    let size = png_size(&png)?;
    assert_eq!(size, grid_size(24, [3, 3]));
    // 8 filters a row, 3 rows of 24-pixel squares with 2-pixel gaps.
    assert_eq!(size, [8 * 26 + 2, 3 * 26 + 2]);
    assert_eq!(json["filters"]["image"], serde_json::json!(size));
    assert_eq!(
        std::fs::read_dir(out.path())?.count(),
        1,
        "a partial file was left"
    );

    let text = succeeded(&inspect(&[
        model.as_os_str(),
        "--filters".as_ref(),
        png.as_os_str(),
    ])?);
    assert!(text.contains("filters: 24 of 3x3"), "{text}");
    Ok(())
}

/// `ValueInfoProto` of a float tensor `[batch, 1, 2, 2]`.
fn image_value(name: &str) -> Vec<u8> {
    let mut shape = Vec::new();
    let mut batch = Vec::new();
    len_field(&mut batch, 2, b"batch");
    len_field(&mut shape, 1, &batch);
    for size in [1, 2, 2] {
        let mut dim = Vec::new();
        int_field(&mut dim, 1, size);
        len_field(&mut shape, 1, &dim);
    }
    let mut tensor_type = Vec::new();
    int_field(&mut tensor_type, 1, 1);
    len_field(&mut tensor_type, 2, &shape);
    let mut type_proto = Vec::new();
    len_field(&mut type_proto, 1, &tensor_type);
    let mut info = Vec::new();
    len_field(&mut info, 1, name.as_bytes());
    len_field(&mut info, 2, &type_proto);
    info
}

/// A valid ONNX model without convolutions: `y = Identity(x)`, x and y float `[batch, 1, 2, 2]`.
fn identity_model() -> Vec<u8> {
    let mut node = Vec::new();
    len_field(&mut node, 1, b"x");
    len_field(&mut node, 2, b"y");
    len_field(&mut node, 4, b"Identity");
    let mut graph = Vec::new();
    len_field(&mut graph, 1, &node);
    len_field(&mut graph, 2, b"identity");
    len_field(&mut graph, 11, &image_value("x"));
    len_field(&mut graph, 12, &image_value("y"));
    let mut opset = Vec::new();
    len_field(&mut opset, 1, b"");
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    len_field(&mut model, 7, &graph);
    len_field(&mut model, 8, &opset);
    model
}

/// [`identity_model`] with `emolens.*` metadata reading `y` (four values per image) as a softmax
/// head with `labels`.
fn identity_model_with_metadata(labels: &[&str]) -> anyhow::Result<Vec<u8>> {
    let meta = ModelMeta {
        preprocess: Preprocess {
            size: [2, 2],
            channels: 1,
            scale: 1.0 / 255.0,
            mean: vec![0.5],
            std: vec![0.5],
        },
        heads: vec![Head {
            output: "y".into(),
            kind: HeadKind::Softmax,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            threshold: None,
        }],
        views: Views::new(),
        provenance: None,
        quantization: None,
    };
    Ok(emolens::train::export::with_metadata_props(
        identity_model(),
        &meta.to_pairs()?,
    ))
}

#[test]
fn files_that_are_not_emolens_models_fail_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.onnx");
    assert_clean_failure(
        &inspect(&[missing.as_os_str()])?,
        &["missing.onnx", "model not found", "give the path"],
    );

    let text = dir.path().join("notes.onnx");
    std::fs::write(&text, "hello, world\n")?;
    assert_clean_failure(
        &inspect(&[text.as_os_str()])?,
        &["notes.onnx", "not an ONNX model", "emolens train"],
    );

    // Labels that do not fit the output are found when the model is loaded.
    let misfit = dir.path().join("misfit.onnx");
    std::fs::write(&misfit, identity_model_with_metadata(&["calm", "busy"])?)?;
    assert_clean_failure(
        &inspect(&[misfit.as_os_str()])?,
        &["misfit.onnx", "gives 4 values per face", "lists 2 labels"],
    );

    let bare = dir.path().join("bare.onnx");
    std::fs::write(&bare, identity_model())?;
    assert_clean_failure(
        &inspect(&[bare.as_os_str()])?,
        &["bare.onnx", "emolens.preprocess", "emolens train"],
    );
    Ok(())
}

#[test]
fn models_without_convolutions_describe_but_draw_no_filters() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("identity.onnx");
    std::fs::write(
        &model,
        identity_model_with_metadata(&["calm", "busy", "tired", "bored"])?,
    )?;
    let stdout = succeeded(&inspect(&[model.as_os_str()])?);
    assert!(
        stdout.contains("calm, busy, tired, bored")
            && stdout.contains("views: none")
            && stdout.contains("provenance: none")
            && stdout.contains("input: x float32[batch, 1, 2, 2]"),
        "{stdout}"
    );

    let png = dir.path().join("filters.png");
    let output = inspect(&[model.as_os_str(), "--filters".as_ref(), png.as_os_str()])?;
    assert_clean_failure(&output, &["identity.onnx", "no Conv node"]);
    assert!(output.stdout.is_empty());
    assert!(!png.exists());

    let jpg = dir.path().join("filters.jpg");
    assert_clean_failure(
        &inspect(&[
            default_model().as_os_str(),
            "--filters".as_ref(),
            jpg.as_os_str(),
        ])?,
        &["filters.jpg", "ending in .png"],
    );
    Ok(())
}
