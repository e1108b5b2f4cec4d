//! Emotion-model inference speed on this CPU: ms per face for batches of 1, 8 and 32 faces with
//! one and two ONNX Runtime threads, for each model given (default: the emotion models shipped
//! in models/). The crops are real FER2013 PublicTest faces, normalised as the pipeline does.
//!
//!     cargo bench --bench inference [-- MODEL.onnx ...]
//!
//! Each setting runs for about a second after a warm-up, and the median of its runs is printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use emolens::classifier::Classifier;
use opencv::core::Mat;
use opencv::imgcodecs;
use opencv::prelude::*;

const BATCHES: [usize; 3] = [1, 8, 32];
const THREADS: [usize; 2] = [1, 2];
const RUN_FOR: Duration = Duration::from_secs(1);

fn main() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut models: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if models.is_empty() {
        models = std::fs::read_dir(repo.join("models"))?
            .map(|e| Ok(e?.path()))
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter()
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.starts_with("emolens-") && name.ends_with(".onnx")
            })
            .collect();
        models.sort();
    }
    let faces = faces(&repo.join("../shared/data/fer2013/PublicTest/happy"), 32)?;
    let env = emolens::ort_runtime::environment(None)?;
    println!("model                          threads  ms/face (batch 1, 8, 32)");
    for model in &models {
        for threads in THREADS {
            let mut classifier = Classifier::load(model, &env, threads)
                .with_context(|| format!("{}: cannot load", model.display()))?;
            let mut timings = Vec::new();
            for batch in BATCHES {
                let mut input = classifier.input_batch(batch);
                let row = classifier.input_len();
                let slots = input.as_slice_mut().context("input batch")?;
                for (slot, face) in slots.chunks_mut(row).zip(faces.iter().cycle()) {
                    classifier.normalise(face, slot);
                }
                timings.push(ms_per_face(&mut classifier, &input, batch)?);
            }
            let name = model.file_name().unwrap_or_default().to_string_lossy();
            println!(
                "{name:<30} {threads:>7}  {}",
                timings
                    .iter()
                    .map(|t| format!("{t:6.3}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    Ok(())
}

/// Median time per face of repeated runs on `input`.
fn ms_per_face(
    classifier: &mut Classifier,
    input: &ndarray::Array4<f32>,
    batch: usize,
) -> Result<f64> {
    for _ in 0..5 {
        classifier.probabilities(input.view())?;
    }
    let mut runs = Vec::new();
    let started = Instant::now();
    while started.elapsed() < RUN_FOR || runs.len() < 5 {
        let run = Instant::now();
        classifier.probabilities(input.view())?;
        runs.push(run.elapsed().as_secs_f64() * 1000.0 / batch as f64);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[runs.len() / 2])
}

/// The gray pixels (0..=255) of the first `count` images of a folder, in name order.
fn faces(folder: &Path, count: usize) -> Result<Vec<Vec<f32>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("{}: the FER2013 images are needed", folder.display()))?
        .map(|e| Ok(e?.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort();
    files
        .iter()
        .take(count)
        .map(|file| {
            let image: Mat = imgcodecs::imread(file, imgcodecs::IMREAD_GRAYSCALE)?;
            Ok(image.data_bytes()?.iter().map(|&b| f32::from(b)).collect())
        })
        .collect()
}
