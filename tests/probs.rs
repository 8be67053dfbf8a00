//! `phonrec probs` and `phonrec::inspect`: every output form (TSV, CSV, JSON, NPY + sidecar, PNG, HTML),
//! bad inputs, and (with Chromium) the HTML page in a real headless browser.
//!
//! Models here have random weights: their posteriors mean nothing, but they are real network outputs of
//! the shipped example audio, in the shapes and with the phone names a trained model gives.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{phonrec, stderr, stdout};

use ndarray::{Array2, Axis};
use ndarray_npy::ReadNpyExt;
use phonrec::audio::{read_audio, Waveform};
use phonrec::ctc::PhoneSpan;
use phonrec::features::FeatureOptions;
use phonrec::inspect::{
    viridis, write_html, write_png, Inspection, PictureLayout, PictureOptions, Posteriorgram,
};
use phonrec::model::{Blstm, InitOptions, Model, ModelConfig, ModelFile, NetworkConfig};
use phonrec::phones::{PhoneId, PhoneSet};
use phonrec::recognize::{Recognizer, RecognizerOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How far a printed row of probabilities may sum from 1: 40 values rounded to 6 decimals, plus f32.
const ROW_SUM_TOLERANCE: f64 = 1e-4;
/// The shipped 16 kHz example: 49280 samples -> 1 + (49280 - 400) / 160 = 306 frames of 10 ms.
const EXAMPLE: &str = "audio/slt_dark_suit_16k.wav";
const EXAMPLE_FRAMES: usize = 306;

/// A small randomly initialised model over `phones`, saved to `dir/name`.
fn random_model(dir: &Path, name: &str, phones: PhoneSet) -> phonrec::Result<PathBuf> {
    let network = NetworkConfig {
        input_dim: 80,
        num_outputs: phones.len(),
        num_layers: 1,
        hidden_size: 16,
        ..NetworkConfig::default()
    };
    let (_, var_map) = Blstm::trainable(&network, &InitOptions::default())?;
    let config = ModelConfig {
        features: FeatureOptions::default(),
        network,
        phones,
        training: Default::default(),
    };
    let path = dir.join(name);
    ModelFile::from_var_map(config, &var_map)?.save(&path)?;
    Ok(path)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Parse a delimited table into its header and rows of fields.
fn parse_table(text: &str, delimiter: char) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("a header")
        .split(delimiter)
        .map(String::from)
        .collect();
    let rows = lines
        .map(|l| l.split(delimiter).map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn tsv_on_stdout_names_every_phone_and_each_row_sums_to_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let output = phonrec(&["probs", EXAMPLE, "--model", path_str(&model)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (header, rows) = parse_table(&stdout(&output), '\t');
    let mut expected = vec!["time_s".to_string()];
    expected.extend(PhoneSet::timit39().names().iter().cloned());
    assert_eq!(header, expected);
    assert_eq!(header[1], "<blk>");
    assert_eq!(rows.len(), EXAMPLE_FRAMES);
    for (frame, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 41);
        let time: f64 = row[0].parse()?;
        assert!(
            (time - frame as f64 * 0.01).abs() < 1e-9,
            "row {frame} at {time}"
        );
        let sum: f64 = row[1..].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!(
            (sum - 1.0).abs() < ROW_SUM_TOLERANCE,
            "row {frame} sums to {sum}"
        );
    }
    Ok(())
}

#[test]
fn csv_top_k_lists_the_most_probable_phones_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let out = dir.path().join("top.csv");
    let output = phonrec(&[
        "probs",
        EXAMPLE,
        "--model",
        path_str(&model),
        "--top",
        "3",
        "--output",
        path_str(&out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "the table went to the file");
    let (header, rows) = parse_table(&std::fs::read_to_string(&out)?, ',');
    assert_eq!(
        header,
        ["time_s", "phone1", "prob1", "phone2", "prob2", "phone3", "prob3"]
    );
    assert_eq!(rows.len(), EXAMPLE_FRAMES);
    let phones = PhoneSet::timit39();
    for row in &rows {
        let names = [&row[1], &row[3], &row[5]];
        assert!(names.iter().all(|n| phones.id(n).is_some()), "{row:?}");
        let probs: Vec<f64> = [&row[2], &row[4], &row[6]]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(probs[0] >= probs[1] && probs[1] >= probs[2], "{row:?}");
        assert!(probs.iter().sum::<f64>() <= 1.0 + ROW_SUM_TOLERANCE);
    }
    Ok(())
}

#[test]
fn json_and_log_json_hold_the_same_distributions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let run = |extra: &[&str]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let mut args = vec![
            "probs",
            EXAMPLE,
            "--model",
            path_str(&model),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        Ok(serde_json::from_slice(&output.stdout)?)
    };
    let plain = run(&[])?;
    let log = run(&["--log"])?;
    assert_eq!(plain["values"], "probability");
    assert_eq!(log["values"], "log_probability");
    assert_eq!(plain["frame_shift_s"], 0.01);
    assert_eq!(plain["phones"].as_array().unwrap().len(), 40);
    let frames = plain["frames"].as_array().unwrap();
    assert_eq!(frames.len(), EXAMPLE_FRAMES);
    for (frame, log_frame) in frames.iter().zip(log["frames"].as_array().unwrap()) {
        let probs: Vec<f64> = frame["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < ROW_SUM_TOLERANCE);
        for (p, lp) in probs.iter().zip(log_frame["values"].as_array().unwrap()) {
            let lp = lp.as_f64().unwrap();
            assert!(lp <= 0.0 && (lp.exp() - p).abs() < 1e-5);
        }
    }
    Ok(())
}

#[test]
fn npy_has_a_sidecar_naming_columns_and_frame_shift() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    for log in [false, true] {
        let out = dir.path().join(format!("probs_{log}.npy"));
        let mut args = vec![
            "probs",
            EXAMPLE,
            "--model",
            path_str(&model),
            "-o",
            path_str(&out),
        ];
        if log {
            args.push("--log");
        }
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let array = Array2::<f32>::read_npy(std::fs::File::open(&out)?)?;
        assert_eq!(array.dim(), (EXAMPLE_FRAMES, 40));
        let probs = if log { array.mapv(f32::exp) } else { array };
        for sum in probs.sum_axis(Axis(1)) {
            assert!((sum as f64 - 1.0).abs() < 1e-4, "row sums to {sum}");
        }
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}.json", out.display()))?)?;
        assert_eq!(sidecar["phones"][0], "<blk>");
        assert_eq!(
            sidecar["phones"].as_array().unwrap().len(),
            PhoneSet::timit39().len()
        );
        assert_eq!(sidecar["frame_shift_s"], 0.01);
        assert_eq!(sidecar["shape"], serde_json::json!([EXAMPLE_FRAMES, 40]));
        assert_eq!(sidecar["dtype"], "float32");
        let values = if log {
            "log_probability"
        } else {
            "probability"
        };
        assert_eq!(sidecar["values"], values);
    }
    Ok(())
}

#[test]
fn any_phone_inventory_names_the_columns_and_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let phones = PhoneSet::from_phones(["a", "i", "u", "sil"].map(String::from))?;
    let model = random_model(dir.path(), "vowels.safetensors", phones)?;
    let png = dir.path().join("vowels.png");
    let output = phonrec(&[
        "probs",
        "audio/fsdd_7_jackson_0_8k.wav",
        "--model",
        path_str(&model),
        "--format",
        "tsv",
        "--png",
        path_str(&png),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (header, rows) = parse_table(&stdout(&output), '\t');
    assert_eq!(header, ["time_s", "<blk>", "a", "i", "u", "sil"]);
    assert!(!rows.is_empty());
    let picture = image::open(&png)?;
    // Five rows of 14 px (and the blank's gap) instead of forty: a much shorter picture.
    assert!(picture.height() < 300, "height {}", picture.height());
    Ok(())
}

#[test]
fn png_of_an_example_has_the_layouts_size_and_is_not_blank() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model_path = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let png = dir.path().join("slt.png");
    let output = phonrec(&[
        "probs",
        EXAMPLE,
        "--model",
        path_str(&model_path),
        "--png",
        path_str(&png),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "--png alone writes no table");

    let model = Model::load(&model_path)?;
    let wave = read_audio(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(EXAMPLE)
            .as_path(),
    )?;
    // `probs --model` decodes as `transcribe --model` does: greedy, with speech segmentation.
    let recognizer = Recognizer::new(model, RecognizerOptions::default())?;
    let inspection = Inspection::compute(&recognizer, wave, EXAMPLE)?;
    let layout = PictureLayout::new(&inspection, &PictureOptions::default());
    let picture = image::open(&png)?.to_rgb8();
    assert_eq!(picture.dimensions(), (layout.width_px, layout.height_px));
    // 3.08 s at 400 px/s; 40 rows of 14 px.
    assert_eq!(layout.plot_width_px, 1232);
    assert!((900..1600).contains(&layout.width_px));
    assert!((700..1000).contains(&layout.height_px));

    let colours: HashSet<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 100, "only {} colours", colours.len());
    // The waveform strip has ink in most columns (the example is speech from start to end).
    let waveform_columns = (0..layout.plot_width_px)
        .filter(|&x| {
            (layout.waveform_top_px..layout.spans_top_px)
                .any(|y| picture.get_pixel(layout.plot_left_px + x, y).0 != [255, 255, 255])
        })
        .count();
    assert!(waveform_columns > layout.plot_width_px as usize * 9 / 10);
    Ok(())
}

/// Two phones and the blank over 100 frames: phone `a` certain in frames 20..40, `b` in 60..70.
fn synthetic_inspection() -> Inspection {
    let frames = 100;
    let mut probs = Array2::<f32>::from_elem((frames, 3), 0.0);
    for frame in 0..frames {
        let class = match frame {
            20..40 => 1,
            60..70 => 2,
            _ => 0,
        };
        probs[[frame, class]] = 1.0;
    }
    let posteriors = Posteriorgram::new(
        probs.mapv(|p: f32| p.max(1e-12).ln()),
        vec!["<blk>".into(), "a".into(), "b".into()],
        0.01,
    )
    .unwrap();
    let samples = (0..16_000)
        .map(|i| (i as f32 * 0.05).sin() * 10_000.0)
        .collect();
    Inspection {
        title: "synthetic".into(),
        start_s: 0.0,
        wave: Waveform {
            samples,
            sample_rate_hz: 16_000,
        },
        posteriors,
        spans: vec![
            PhoneSpan {
                phone: PhoneId(1),
                start_s: 0.2,
                end_s: 0.4,
                confidence: 1.0,
                alternatives: Vec::new(),
            },
            PhoneSpan {
                phone: PhoneId(2),
                start_s: 0.6,
                end_s: 0.7,
                confidence: 1.0,
                alternatives: Vec::new(),
            },
        ],
        segments: vec![(0.0, 1.0)],
    }
}

#[test]
fn png_cells_are_coloured_by_probability_where_the_layout_says() -> TestResult {
    let inspection = synthetic_inspection();
    let options = PictureOptions::default();
    let layout = PictureLayout::new(&inspection, &options);
    let mut bytes = Vec::new();
    write_png(&inspection, &options, &mut bytes)?;
    let picture = image::load_from_memory(&bytes)?.to_rgb8();
    assert_eq!(picture.dimensions(), (layout.width_px, layout.height_px));
    let cell = |frame: f64, class: usize| {
        let x = layout.x_of_time(frame * 0.01).round() as u32;
        let y = layout.row_top_px(class) + layout.row_height_px / 2;
        picture.get_pixel(x, y).0
    };
    assert_eq!(
        cell(30.5, 1),
        viridis(1.0),
        "phone a is certain at frame 30"
    );
    assert_eq!(cell(30.5, 0), viridis(0.0), "the blank is not");
    assert_eq!(cell(10.5, 0), viridis(1.0));
    assert_eq!(cell(64.5, 2), viridis(1.0));
    assert_eq!(cell(64.5, 1), viridis(0.0));
    Ok(())
}

#[test]
fn png_of_a_long_recording_is_squeezed_but_keeps_short_peaks() -> TestResult {
    // 20 minutes at 10 ms: far beyond the widest plot.
    let frames = 120_000;
    let mut log_probs = Array2::<f32>::from_elem((frames, 2), 0.0);
    log_probs.column_mut(1).fill(f32::NEG_INFINITY);
    // A single frame where the phone wins.
    log_probs[[77_777, 0]] = f32::NEG_INFINITY;
    log_probs[[77_777, 1]] = 0.0;
    let inspection = Inspection {
        title: "long".into(),
        start_s: 0.0,
        wave: Waveform {
            samples: vec![0.0; 8_000 * 1200],
            sample_rate_hz: 8_000,
        },
        posteriors: Posteriorgram::new(log_probs, vec!["<blk>".into(), "x".into()], 0.01)?,
        spans: Vec::new(),
        segments: Vec::new(),
    };
    let options = PictureOptions::default();
    let layout = PictureLayout::new(&inspection, &options);
    assert_eq!(layout.plot_width_px, options.max_plot_width_px);
    let mut bytes = Vec::new();
    write_png(&inspection, &options, &mut bytes)?;
    let picture = image::load_from_memory(&bytes)?.to_rgb8();
    let y = layout.row_top_px(1) + layout.row_height_px / 2;
    let peak_columns = (layout.plot_left_px..layout.plot_left_px + layout.plot_width_px)
        .filter(|&x| picture.get_pixel(x, y).0 == viridis(1.0))
        .count();
    assert_eq!(peak_columns, 1, "the one-frame peak shows in one column");
    Ok(())
}

#[test]
fn html_is_self_contained_with_audio_data_and_phones() -> TestResult {
    let inspection = synthetic_inspection();
    let mut bytes = Vec::new();
    write_html(&inspection, &mut bytes)?;
    let page = String::from_utf8(bytes)?;
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no network"
    );
    assert!(!page.contains("<script src"), "no external scripts");
    assert!(
        page.contains("src=\"data:audio/wav;base64,UklGR"),
        "embedded WAV (RIFF)"
    );
    let data_start = page
        .find("<script type=\"application/json\" id=\"data\">")
        .unwrap();
    let json_start = page[data_start..].find('>').unwrap() + data_start + 1;
    let json_end = page[json_start..].find("</script>").unwrap() + json_start;
    let data: serde_json::Value = serde_json::from_str(&page[json_start..json_end])?;
    assert_eq!(data["phones"], serde_json::json!(["<blk>", "a", "b"]));
    assert_eq!(data["num_frames"], 100);
    assert_eq!(data["spans"].as_array().unwrap().len(), 2);
    // 100 frames × 3 classes bytes -> 400 base64 characters.
    assert_eq!(data["probs_u8"].as_str().unwrap().len(), 400);
    Ok(())
}

#[test]
fn cli_writes_png_html_and_table_together() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let (png, html, tsv) = (
        dir.path().join("fox.png"),
        dir.path().join("fox.html"),
        dir.path().join("fox.tsv"),
    );
    let output = phonrec(&[
        "probs",
        "audio/espeak_quick_fox_22k.wav",
        "--model",
        path_str(&model),
        "--png",
        path_str(&png),
        "--html",
        path_str(&html),
        "--output",
        path_str(&tsv),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(image::open(&png)?.width() > 1000);
    assert!(std::fs::read_to_string(&html)?.contains("phonrec posteriorgram"));
    // 73393 samples at 22.05 kHz -> 53257 at 16 kHz -> 331 frames, plus the header.
    assert_eq!(std::fs::read_to_string(&tsv)?.lines().count(), 332);
    Ok(())
}

#[test]
fn a_window_shows_the_whole_recordings_rows_phones_and_regions_in_its_timeline() -> TestResult {
    // The built-in model, so that phones are decoded: its rows are 20 ms apart.
    let dir = tempfile::tempdir()?;
    let run = |extra: &[&str]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let mut args = vec!["probs", EXAMPLE, "--format", "json"];
        args.extend_from_slice(extra);
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        Ok(serde_json::from_slice(&output.stdout)?)
    };
    let whole = run(&[])?;
    let part = run(&["--start", "0.95", "--end", "2.1"])?;
    assert_eq!(whole["start_s"], 0.0);
    // The part starts on the first frame boundary at or after --start.
    assert_eq!(part["start_s"], 0.96);
    let time = |frame: &serde_json::Value| frame["time_s"].as_f64().unwrap();
    let inside = |t: f64| (0.96 - 1e-9..2.1).contains(&t);
    let expected: Vec<&serde_json::Value> = whole["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| inside(time(f)))
        .collect();
    let shown: Vec<&serde_json::Value> = part["frames"].as_array().unwrap().iter().collect();
    assert_eq!(shown.len(), 57, "frames 0.96, 0.98, ..., 2.08");
    // The same rows, probabilities and times: the network heard the whole recording.
    assert_eq!(shown, expected);
    let middle = |span: &serde_json::Value| {
        (span["start"].as_f64().unwrap() + span["end"].as_f64().unwrap()) / 2.0
    };
    let expected_phones: Vec<&serde_json::Value> = whole["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|span| inside(middle(span)))
        .collect();
    assert!(expected_phones.len() >= 10, "{expected_phones:?}");
    let shown_phones: Vec<&serde_json::Value> =
        part["decoded"].as_array().unwrap().iter().collect();
    assert_eq!(shown_phones, expected_phones);
    for segment in part["segments"].as_array().unwrap() {
        let (a, b) = (segment[0].as_f64().unwrap(), segment[1].as_f64().unwrap());
        assert!(0.96 - 1e-6 <= a && a < b && b <= 2.1 + 1e-6, "{segment}");
    }
    assert!(!part["segments"].as_array().unwrap().is_empty());

    // TSV rows keep their times; the NPY sidecar says where row 0 is.
    let tsv = phonrec(&["probs", EXAMPLE, "--start", "1", "--end", "1.1"]);
    assert!(tsv.status.success(), "{}", stderr(&tsv));
    let (_, rows) = parse_table(&stdout(&tsv), '\t');
    let times: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(times, ["1.000", "1.020", "1.040", "1.060", "1.080"]);
    let npy = dir.path().join("part.npy");
    let output = phonrec(&["probs", EXAMPLE, "--start", "1", "-o", path_str(&npy)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let array = Array2::<f32>::read_npy(std::fs::File::open(&npy)?)?;
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.json", npy.display()))?)?;
    assert_eq!(sidecar["start_s"], 1.0);
    let rows_after_one = whole["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| time(f) >= 1.0 - 1e-9)
        .count();
    assert_eq!(array.nrows(), rows_after_one);

    // Pictures of a part: the PNG's layout knows where it starts, the page embeds only its audio.
    let (png, html) = (dir.path().join("part.png"), dir.path().join("part.html"));
    let output = phonrec(&[
        "probs",
        EXAMPLE,
        "--start",
        "1",
        "--end",
        "2",
        "--png",
        path_str(&png),
        "--html",
        path_str(&html),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(image::open(&png)?.width() > 300);
    let page = std::fs::read_to_string(&html)?;
    assert!(
        page.contains("\"start_s\":1.0"),
        "the page's data has no start"
    );
    let whole_html = dir.path().join("whole.html");
    let output = phonrec(&["probs", EXAMPLE, "--html", path_str(&whole_html)]);
    assert!(output.status.success(), "{}", stderr(&output));
    // One second of the 3.08 s recording: about a third of the embedded audio.
    let whole_len = std::fs::metadata(&whole_html)?.len() as f64;
    assert!(
        (page.len() as f64) < whole_len * 0.5,
        "{} of {whole_len}",
        page.len()
    );
    Ok(())
}

#[test]
fn window_of_an_inspection_cuts_rows_audio_phones_and_regions() -> TestResult {
    let inspection = synthetic_inspection();
    let part = inspection.clone().window(0.25, Some(0.65))?;
    assert!((part.start_s - 0.25).abs() < 1e-12);
    assert_eq!(part.posteriors.num_frames(), 40);
    assert_eq!(
        part.posteriors.log_probs().row(0),
        inspection.posteriors.log_probs().row(25)
    );
    assert_eq!(part.wave.samples[..], inspection.wave.samples[4000..10_400]);
    // Phone a (0.2-0.4 s, middle 0.3) is shown, moved into the part's time; b's middle (0.65 s)
    // is the window's end, which is not in it.
    assert_eq!(part.spans.len(), 1);
    assert_eq!(part.spans[0].phone, PhoneId(1));
    assert!((part.spans[0].start_s + 0.05).abs() < 1e-6);
    assert!((part.spans[0].end_s - 0.15).abs() < 1e-6);
    assert_eq!(part.segments.len(), 1);
    assert!(part.segments[0].0.abs() < 1e-6 && (part.segments[0].1 - 0.4).abs() < 1e-6);
    // A window of a window is taken in the recording's timeline; an open end is the recording's.
    let inner = part.clone().window(0.5, None)?;
    assert!((inner.start_s - 0.5).abs() < 1e-9);
    assert_eq!(inner.posteriors.num_frames(), 15);
    assert_eq!(
        inner.posteriors.log_probs().row(0),
        inspection.posteriors.log_probs().row(50)
    );
    let tail = inspection.clone().window(0.9, Some(50.0))?;
    assert_eq!(tail.posteriors.num_frames(), 10);
    assert_eq!(tail.wave.samples.len(), 16_000 - 14_400);
    // A PNG of the part draws (the cut phone's box is kept inside the plot).
    let layout = PictureLayout::new(&part, &PictureOptions::default());
    assert!((layout.start_s - 0.25).abs() < 1e-12);
    let mut bytes = Vec::new();
    write_png(&part, &PictureOptions::default(), &mut bytes)?;
    assert_eq!(
        image::load_from_memory(&bytes)?.to_rgb8().dimensions(),
        (layout.width_px, layout.height_px)
    );
    // Windows that show nothing are errors that say why.
    for (start, end, says) in [
        (1.0, None, "ends at 1.00 s"),
        (0.5, Some(0.5), "must come after"),
        (0.501, Some(0.509), "no frame starts"),
        (-1.0, None, "0 s or later"),
        (f64::NAN, None, "0 s or later"),
    ] {
        let error = inspection
            .clone()
            .window(start, end)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{start} {end:?}: {error}");
    }
    Ok(())
}

#[test]
fn bad_inputs_fail_with_a_message_naming_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let model = path_str(&model);
    // `probs ARGS` fails and its error says each of `says`.
    let fails_saying = |args: &[&str], says: &[&str]| {
        let mut argv = vec!["probs"];
        argv.extend_from_slice(args);
        let output = phonrec(&argv);
        assert!(!output.status.success(), "{args:?} succeeded");
        for text in says {
            assert!(
                stderr(&output).contains(text),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    };
    fails_saying(
        &["audio/no_such_file.wav", "--model", model],
        &["no_such_file.wav"],
    );
    fails_saying(
        &["Cargo.toml", "--model", model],
        &["Cargo.toml", "not an audio file"],
    );
    fails_saying(
        &[EXAMPLE, "--model", model, "--format", "npy", "--top", "3"],
        &["--top"],
    );
    fails_saying(
        &[EXAMPLE, "--model", model, "--start", "10"],
        &["ends at 3.08 s"],
    );
    fails_saying(
        &[EXAMPLE, "--model", model, "--start", "2", "--end", "1"],
        &["--end (1 s) must come after --start (2 s)"],
    );
    fails_saying(
        &[EXAMPLE, "--model", "no_such_model.safetensors"],
        &["no_such_model.safetensors"],
    );
    Ok(())
}

/// The browser the HTML test uses: `PHONREC_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("PHONREC_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Run headless Chromium on `url` with `extra` arguments and a fresh profile; returns its output.
fn run_chromium(url: &str, extra: &[&str]) -> std::io::Result<Output> {
    let profile = tempfile::tempdir()?;
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--enable-logging=stderr",
        "--v=0",
        &profile_arg,
    ]);
    command.args(extra).arg(url);
    command.output()
}

/// Console messages and uncaught exceptions in Chromium's log. The page logs nothing when all is
/// well, and Chromium's log does not tell `console.error` from `console.log`, so any message counts.
fn console_messages(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// The HTML page in a real browser: it renders without console errors, its self-test (hover, click,
/// zoom, seeking and playback moving the cursor) passes, and a screenshot shows the posteriorgram.
///
/// Runs when Chromium is installed; skipped with a notice otherwise, unless PHONREC_BROWSER_TESTS=1
/// (as CI sets), which makes a missing browser a failure.
#[test]
fn html_page_works_in_headless_chromium() -> TestResult {
    let required = std::env::var("PHONREC_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if !chromium().is_file() {
        assert!(
            !required,
            "PHONREC_BROWSER_TESTS=1 but {} is missing (apt-get install chromium)",
            chromium().display()
        );
        eprintln!(
            "skipping the browser test: {} not found (apt-get install chromium, or set PHONREC_CHROMIUM)",
            chromium().display()
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let model = random_model(dir.path(), "m.safetensors", PhoneSet::timit39())?;
    let html = dir.path().join("page.html");
    let part_html = dir.path().join("part.html");
    let mut url = String::new();
    // The whole recording, and a part of it (whose labels count from its start).
    for (page, extra) in [
        (&html, &[][..]),
        (&part_html, &["--start", "0.5", "--end", "2.5"][..]),
    ] {
        let mut args = vec![
            "probs",
            EXAMPLE,
            "--model",
            path_str(&model),
            "--html",
            path_str(page),
        ];
        args.extend_from_slice(extra);
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let page_url = format!("file://{}", page.display());

        let dom = run_chromium(
            &format!("{page_url}#selftest"),
            &["--virtual-time-budget=15000", "--dump-dom"],
        )?;
        let log = stderr(&dom);
        let dom_text = stdout(&dom);
        assert!(dom.status.success(), "chromium failed: {log}");
        assert!(
            console_messages(&log).is_empty(),
            "console messages: {:?}",
            console_messages(&log)
        );
        let status = dom_text
            .split("id=\"status\"")
            .nth(1)
            .and_then(|rest| rest.split('>').nth(1))
            .and_then(|rest| rest.split('<').next())
            .unwrap_or("(no status element)");
        assert!(status.starts_with("selftest-ok"), "page status: {status}");
        // Chromium runs with autoplay allowed, so playback itself moved the cursor.
        assert!(status.contains("played to"), "page status: {status}");
        eprintln!("browser self-test {extra:?}: {status}");
        if url.is_empty() {
            url = page_url;
        }
    }

    let screenshot = dir.path().join("page.png");
    let shot = run_chromium(
        &url,
        &[
            "--window-size=1400,1000",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            &format!("--screenshot={}", screenshot.display()),
        ],
    )?;
    assert!(shot.status.success(), "chromium failed: {}", stderr(&shot));
    assert!(
        console_messages(&stderr(&shot)).is_empty(),
        "{}",
        stderr(&shot)
    );
    let picture = image::open(&screenshot)?.to_rgb8();
    assert_eq!(picture.dimensions(), (1400, 1000));
    let colours: HashSet<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 50,
        "a blank page: {} colours",
        colours.len()
    );
    // The posteriorgram is drawn: a good part of the screen is in viridis colours.
    let viridis_table: Vec<[u8; 3]> = (0..=255).map(|i| viridis(i as f32 / 255.0)).collect();
    let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= 3);
    let posteriorgram_pixels = picture
        .pixels()
        .filter(|p| viridis_table.iter().any(|&c| near(p.0, c)))
        .count();
    assert!(
        posteriorgram_pixels > 100_000,
        "no posteriorgram on screen ({posteriorgram_pixels} px)"
    );
    Ok(())
}

#[test]
fn probs_decodes_the_phones_transcribe_outputs() -> TestResult {
    // The built-in model with its default decoding (beam search, phone LM, segmentation) on both.
    for example in [EXAMPLE, "audio/espeak_quick_fox_22k.wav"] {
        let transcribed = phonrec(&["transcribe", example, "--format", "json"]);
        assert!(transcribed.status.success(), "{}", stderr(&transcribed));
        let transcribed: serde_json::Value = serde_json::from_slice(&transcribed.stdout)?;
        let probs = phonrec(&["probs", example, "--format", "json", "--top", "1"]);
        assert!(probs.status.success(), "{}", stderr(&probs));
        let probs: serde_json::Value = serde_json::from_slice(&probs.stdout)?;
        let decoded: Vec<&str> = probs["decoded"]
            .as_array()
            .ok_or("no decoded phones")?
            .iter()
            .filter_map(|span| span["phone"].as_str())
            .collect();
        assert!(!decoded.is_empty(), "{example}: nothing decoded");
        assert_eq!(
            decoded.join(" "),
            transcribed["phones"].as_str().ok_or("no phones")?,
            "{example}"
        );
        assert_eq!(
            probs["decoded"], transcribed["spans"],
            "{example}: times differ"
        );
        assert_eq!(probs["segments"], transcribed["segments"], "{example}");
    }
    Ok(())
}
