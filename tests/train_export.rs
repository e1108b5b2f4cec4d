//! A few training steps on real FER2013 images, export, and the ONNX model in ONNX Runtime
//! giving the trained network's logits.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use emolens::augment::AugmentConfig;
use emolens::classifier::Classifier;
use emolens::dataset::ferplus::LabelMode;
use emolens::dataset::{DataSource, FER2013_LABELS};
use emolens::train::checkpoint::Checkpoint;
use emolens::train::net::{EmotionNet, NetConfig, DEFAULT_WIDTH};
use emolens::train::{ClassWeighting, TrainConfig, Validation};

use crate::util::{fer_subset, shared_data};

#[test]
fn few_steps_export_and_ort_reproduces_logits() -> anyhow::Result<()> {
    let train = fer_subset("Training", 12);
    let val = fer_subset("PublicTest", 4);
    let out = tempfile::tempdir()?;
    let config = TrainConfig {
        data: DataSource::Folder(train.path().to_owned()),
        validation: Validation::Source(DataSource::Folder(val.path().to_owned())),
        // Targets blended with the FER+ votes: every image is kept, with or without votes.
        ferplus: Some((
            shared_data().join("fer2013/ferplus/fer2013new.csv"),
            LabelMode::Blend,
        )),
        aus: None,
        views: Default::default(),
        output: out.path().join("tiny.onnx"),
        checkpoint_dir: out.path().join("tiny.ckpt"),
        resume: false,
        init: None,
        epochs: 2,
        batch_size: 16,
        learning_rate: 1e-3,
        weight_decay: 0.01,
        dropout: 0.3,
        label_smoothing: 0.1,
        // The stronger recipe's options run too: mixup and random erasing.
        mixup: 0.2,
        average_last: 2,
        patience: 5,
        class_weights: ClassWeighting::Balanced,
        augment: AugmentConfig {
            erase: 0.5,
            ..AugmentConfig::DEFAULT
        },
        seed: 3,
        size: 48,
        // Narrower than the shipped models: the option reaches the network, export and resume.
        width: DEFAULT_WIDTH / 2,
        max_steps_per_epoch: Some(3),
        ort_lib: None,
        stop: Default::default(),
    };
    let model_path = emolens::train::run(&config)?;
    assert!(model_path.is_file());
    assert!(config.checkpoint_dir.join("curves.csv").is_file());
    assert!(config.checkpoint_dir.join("curves.png").is_file());
    let state = Checkpoint::load(&config.checkpoint_dir)?;
    assert_eq!(state.epochs_done, 2);
    // The last two epochs' weights are kept and averaged.
    for path in [
        Checkpoint::epoch_path(&config.checkpoint_dir, 1),
        Checkpoint::epoch_path(&config.checkpoint_dir, 2),
        Checkpoint::average_path(&config.checkpoint_dir),
    ] {
        assert!(path.is_file(), "{}", path.display());
    }

    let env = emolens::ort_runtime::environment(None)?;
    let mut classifier = Classifier::load(&model_path, &env, 0)?;
    let meta = classifier.meta().clone();
    assert_eq!(
        meta.emotion_head()?.labels,
        FER2013_LABELS.map(String::from).to_vec()
    );
    let provenance = meta
        .provenance
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no provenance"))?;
    assert_eq!(
        (
            provenance.train_size,
            provenance.val_size,
            provenance.epochs
        ),
        (84, 28, 2)
    );
    assert_eq!(provenance.architecture, "vgg4-16-32-64-128");

    // The exported network (the average when it won, else the best epoch; validation mode) on
    // real validation images.
    let exported = match provenance.averaged_from {
        Some(first) => {
            assert_eq!((first, provenance.best_epoch), (1, 2));
            Checkpoint::average_path(&config.checkpoint_dir)
        }
        None => Checkpoint::best_path(&config.checkpoint_dir),
    };
    let data = DataSource::Folder(val.path().to_owned()).load(None, 48)?;
    let n = data.len();
    let mut input = classifier.input_batch(n);
    let raw: Vec<f32> = data.pixels.iter().map(|&p| f32::from(p)).collect();
    classifier.normalise(
        &raw,
        input
            .as_slice_mut()
            .ok_or_else(|| anyhow::anyhow!("layout"))?,
    );
    let device = Device::flex();
    let net_config = NetConfig {
        channels: 1,
        size: 48,
        width: config.width,
        action_units: 0,
        classes: 7,
        dropout: 0.3,
    };
    let trained = EmotionNet::new(&net_config, &device)
        .try_load_file(exported)?
        .valid();
    let expected = trained
        .forward(Tensor::<4>::from_data(
            TensorData::new(input.iter().copied().collect::<Vec<_>>(), [n, 1, 48, 48]),
            &device,
        ))
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let actual = classifier.logits(input.view())?.swap_remove(0);
    assert_eq!(actual.len(), expected.len());
    let max_diff = actual
        .iter()
        .zip(&expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff < 1e-4,
        "ONNX Runtime differs from burn by {max_diff}"
    );

    // Resuming a finished run only exports again, and a run over other data is refused.
    let resumed = TrainConfig {
        resume: true,
        ..config.clone()
    };
    emolens::train::run(&resumed)?;
    for other in [
        TrainConfig {
            resume: true,
            seed: 4,
            ..config.clone()
        },
        TrainConfig {
            resume: true,
            width: DEFAULT_WIDTH,
            ..config
        },
    ] {
        let err = emolens::train::run(&other).unwrap_err();
        assert!(format!("{err:#}").contains("another run"), "{err:#}");
    }
    Ok(())
}

#[test]
fn folds_cross_validate_ckplus_by_subject() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let output = dir.path().join("ck.onnx");
    let run = assert_cmd::Command::cargo_bin("emolens")?
        .args(["train", "--data"])
        .arg(crate::util::shared_data().join("ckplus"))
        .args([
            "--val",
            "0.1",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--folds",
            "3",
            "-o",
        ])
        .arg(&output)
        .output()?;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!output.exists(), "cross-validation writes no model");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ck.folds.json"))?)?;
    assert_eq!(report["by_subject"], true);
    let folds = report["per_fold"].as_array().cloned().unwrap_or_default();
    assert_eq!(folds.len(), 3);
    let tested: u64 = folds.iter().filter_map(|f| f["test_images"].as_u64()).sum();
    let subjects: u64 = folds
        .iter()
        .filter_map(|f| f["test_subjects"].as_u64())
        .sum();
    assert_eq!(tested, 981, "every CK+ image is tested once");
    assert_eq!(subjects, 118, "every subject is in exactly one test fold");
    assert!(report["accuracy"]["mean"].as_f64().is_some());
    assert!(String::from_utf8_lossy(&run.stdout).contains("mean ± std"));
    Ok(())
}

#[test]
fn multitask_model_exports_both_heads_and_annotate_writes_action_units() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckplus = crate::util::shared_data().join("ckplus");
    let table = ckplus.join("ckplus_facs_aus_327seq.csv");
    let model = dir.path().join("ck.onnx");
    let views =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/views/ckplus-valence.json");
    let emolens = || assert_cmd::Command::cargo_bin("emolens");
    let (log, described) = train_from_shipped_weights(
        &[
            "--val".as_ref(),
            "0.1".as_ref(),
            "--data".as_ref(),
            ckplus.as_os_str(),
            "--aus".as_ref(),
            table.as_os_str(),
            "--views".as_ref(),
            views.as_os_str(),
        ],
        &model,
    )?;
    assert!(
        log.contains("starting from the layers of"),
        "the shipped FER2013 weights start the network: {log}"
    );
    assert!(
        described.contains("started from: ") && described.contains("emolens-fer2013.bpk"),
        "the provenance names the starting weights: {described}"
    );

    // Both heads are in the metadata; evaluate scores the units against the table.
    let json = dir.path().join("eval.json");
    let evaluated = emolens()?
        .arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&ckplus)
        .arg("--aus")
        .arg(&table)
        .arg("--json")
        .arg(&json)
        .output()?;
    assert!(
        evaluated.status.success(),
        "{}",
        String::from_utf8_lossy(&evaluated.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let units = report["action_units"]["per_unit"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(units.len(), 23, "the 23 CK+ action units are scored");
    assert!(report["action_units"]["micro"]["f1"].as_f64().is_some());
    assert!(
        report["views"]["valence"]["accuracy"].as_f64().is_some(),
        "the views file is in the model"
    );

    // annotate writes the unit probabilities and shows the valence view.
    let records = dir.path().join("faces.jsonl");
    let annotated = emolens()?
        .args(["annotate", "--quiet", "--show-aus", "--view", "valence"])
        .arg(crate::util::video("pyfeat_single_face.mp4"))
        .arg("-o")
        .arg(dir.path().join("out.mp4"))
        .arg("--model")
        .arg(&model)
        .arg("--json")
        .arg(&records)
        .output()?;
    assert!(
        annotated.status.success(),
        "{}",
        String::from_utf8_lossy(&annotated.stderr)
    );
    let text = std::fs::read_to_string(&records)?;
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("{}"))?;
    let aus = first["aus"].as_object().cloned().unwrap_or_default();
    assert_eq!(aus.len(), 23, "unit probabilities in the record: {first}");
    assert!(aus
        .values()
        .all(|p| p.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p))));
    Ok(())
}

#[test]
fn init_from_a_wider_network_narrows_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (train, val) = (fer_subset("Training", 10), fer_subset("PublicTest", 3));
    let (log, described) = train_from_shipped_weights(
        &[
            "--width".as_ref(),
            "16".as_ref(),
            "--data".as_ref(),
            train.path().as_os_str(),
            "--val".as_ref(),
            val.path().as_os_str(),
        ],
        &dir.path().join("narrow.onnx"),
    )?;
    assert!(
        log.contains("from width 32 to 16"),
        "the shipped width-32 weights are narrowed: {log}"
    );
    assert!(
        described.contains("vgg4-16-32-64-128"),
        "a width-16 network: {described}"
    );
    Ok(())
}

/// `emolens train ARGS` for one epoch of two steps, started from the shipped FER2013 weights
/// (`--init models/emolens-fer2013.bpk`) and exported to `model`: its log, and what
/// `emolens inspect` says of the model.
fn train_from_shipped_weights(
    args: &[&std::ffi::OsStr],
    model: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    let trained = assert_cmd::Command::cargo_bin("emolens")?
        .args(["train", "--epochs", "1", "--max-steps", "2", "--init"])
        .arg(crate::util::repo_file("models/emolens-fer2013.bpk"))
        .args(args)
        .arg("-o")
        .arg(model)
        .output()?;
    let log = String::from_utf8_lossy(&trained.stderr).into_owned();
    assert!(trained.status.success(), "{log}");
    let described = crate::util::succeeded(
        &assert_cmd::Command::cargo_bin("emolens")?
            .arg("inspect")
            .arg(model)
            .output()?,
    );
    Ok((log, described))
}

#[test]
fn annotate_refuses_views_and_units_the_model_lacks() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = crate::util::video("pyfeat_single_face.mp4");
    for (flag, needle) in [
        (vec!["--show-aus"], "has no action-unit head"),
        (vec!["--view", "nope"], "has no view `nope`"),
    ] {
        let output = assert_cmd::Command::cargo_bin("emolens")?
            .args(["annotate", "--quiet"])
            .args(&flag)
            .arg(&clip)
            .arg("-o")
            .arg(dir.path().join("out.mp4"))
            .output()?;
        crate::util::assert_clean_failure(&output, &[needle]);
        assert!(!dir.path().join("out.mp4").exists());
    }
    Ok(())
}

#[test]
fn ctrl_c_stops_training_keeping_its_checkpoints_and_one_class_is_refused() -> anyhow::Result<()> {
    let train = fer_subset("Training", 10);
    let val = fer_subset("PublicTest", 3);
    let out = tempfile::tempdir()?;
    let checkpoints = out.path().join("ckpt");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("emolens"))
        .args(["train", "--epochs", "200", "--data"])
        .arg(train.path())
        .arg("--val")
        .arg(val.path())
        .arg("-o")
        .arg(out.path().join("m.onnx"))
        .arg("--checkpoint-dir")
        .arg(&checkpoints)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let started = std::time::Instant::now();
    while !checkpoints.join("state.json").exists() {
        assert!(started.elapsed().as_secs() < 120, "no epoch within 120 s");
        assert!(child.try_wait()?.is_none(), "training ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted during epoch") && stderr.contains("--resume"),
        "{stderr}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checkpoints.join("state.json"))?)?;
    assert!(state["epochs_done"].as_u64().unwrap_or(0) >= 1, "{state}");
    assert!(
        !out.path().join("m.onnx").exists(),
        "no model from a stopped training"
    );

    // One class folder: nothing to tell apart.
    let single = tempfile::tempdir()?;
    std::os::unix::fs::symlink(train.path().join("happy"), single.path().join("happy"))?;
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("emolens"))
        .args(["train", "--epochs", "1", "--val", "0.2", "--data"])
        .arg(single.path())
        .arg("-o")
        .arg(out.path().join("one.onnx"))
        .output()?;
    crate::util::assert_clean_failure(&output, &["1 class (happy)", "at least two"]);
    Ok(())
}
