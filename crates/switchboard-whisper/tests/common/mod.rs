//! Shared test helpers: the setup check, a small ggml reader, speech synthesis with espeak-ng
//! and word error rate.

#![allow(dead_code)]

#[path = "../../../../tests-support/setup.rs"]
mod setup;

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use switchboard::voice::audio::{AudioFrame, OnTruncated, decode_wav};
use switchboard_whisper::{WhisperOptions, WhisperPaths, WhisperStt};

/// The Whisper inputs (the converted model, or the CTranslate2 model and the openai-whisper
/// assets) and espeak-ng, installed by `scripts/setup.sh` if they are not.
pub fn ensure_setup() -> WhisperPaths {
    static SETUP: OnceLock<Result<WhisperPaths, String>> = OnceLock::new();
    setup::ensure_installed(&SETUP, "Whisper", || {
        let paths = WhisperPaths::from_env().map_err(|e| e.to_string())?;
        if setup::file(&paths.ggml).is_err() {
            setup::file(&paths.ct2_model())?;
            setup::file(&paths.assets_dir.join("mel_filters.npz"))?;
            setup::file(&paths.assets_dir.join("multilingual.tiktoken"))?;
        }
        setup::espeak()?;
        Ok(paths)
    })
}

/// The real model, loaded once per test binary (converted on first use).
pub fn model() -> Arc<WhisperStt> {
    static MODEL: OnceLock<Arc<WhisperStt>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let paths = ensure_setup();
            let whisper = WhisperStt::load(&paths, WhisperOptions::default())
                .unwrap_or_else(|e| panic!("load the Whisper model: {e}"));
            eprintln!(
                "loaded {} in {:?}{}",
                whisper.model_path().display(),
                whisper.load_time(),
                whisper
                    .conversion()
                    .map(|r| format!(" (converted {} bytes in {:?})", r.bytes, r.elapsed))
                    .unwrap_or_default()
            );
            whisper
        })
        .clone()
}

/// Synthesises `text` with `espeak-ng -v en-us -s 160 --stdout` (22,050 Hz mono WAV).
pub fn espeak(text: &str) -> AudioFrame {
    let output = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "160", "--stdout", text])
        .output()
        .expect("run espeak-ng (installed by scripts/setup.sh)");
    assert!(
        output.status.success(),
        "espeak-ng failed: {:?}",
        output.status
    );
    // espeak-ng streams: its header declares a placeholder length.
    let wav = decode_wav(Cursor::new(output.stdout), "espeak-ng", OnTruncated::Keep)
        .expect("decode espeak-ng's WAV");
    assert_eq!(wav.frame.sample_rate(), 22_050, "espeak-ng's native rate");
    wav.frame
}

/// Lower-cased words without punctuation (apostrophes inside words are kept).
pub fn normalise(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .trim_matches('\'')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference`: word-level edit distance over the
/// reference length, after [`normalise`].
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let cost = usize::from(rw != hw);
            let next = (prev + cost).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    setup::temp_dir("switchboard-whisper", name)
}

/// One tensor of a ggml file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgmlTensor {
    /// Dimensions innermost first, as stored.
    pub ne: Vec<i32>,
    /// 0 = f32, 1 = f16.
    pub ttype: i32,
    pub data: Vec<u8>,
}

/// A parsed whisper.cpp ggml file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgmlFile {
    /// n_vocab … n_mels, then ftype.
    pub header: [i32; 11],
    pub mel_rows: i32,
    pub mel_cols: i32,
    pub mel: Vec<f32>,
    pub vocab: Vec<Vec<u8>>,
    /// In file order.
    pub tensors: Vec<(String, GgmlTensor)>,
}

impl GgmlFile {
    pub fn tensor(&self, name: &str) -> &GgmlTensor {
        &self
            .tensors
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .1
    }
}

/// Reads a ggml file written by the converter, independently of the crate's code. With
/// `with_data` false the tensor data is skipped (left empty).
pub fn read_ggml(path: &Path, with_data: bool) -> GgmlFile {
    let mut r = std::io::BufReader::new(std::fs::File::open(path).expect("open the ggml file"));
    let len = std::fs::metadata(path).unwrap().len();
    let mut pos = 0u64;
    let i32_ = |r: &mut std::io::BufReader<std::fs::File>, pos: &mut u64| {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).expect("ggml file truncated");
        *pos += 4;
        i32::from_le_bytes(b)
    };
    assert_eq!(i32_(&mut r, &mut pos) as u32, 0x6767_6d6c, "magic");
    let mut header = [0i32; 11];
    for h in &mut header {
        *h = i32_(&mut r, &mut pos);
    }
    let mel_rows = i32_(&mut r, &mut pos);
    let mel_cols = i32_(&mut r, &mut pos);
    let mut mel_bytes = vec![0u8; (mel_rows * mel_cols * 4) as usize];
    r.read_exact(&mut mel_bytes).unwrap();
    pos += mel_bytes.len() as u64;
    let mel = mel_bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n_vocab = i32_(&mut r, &mut pos);
    let mut vocab = Vec::new();
    for _ in 0..n_vocab {
        let n = i32_(&mut r, &mut pos) as usize;
        let mut token = vec![0u8; n];
        r.read_exact(&mut token).unwrap();
        pos += n as u64;
        vocab.push(token);
    }
    let mut tensors = Vec::new();
    while pos < len {
        let n_dims = i32_(&mut r, &mut pos);
        let name_len = i32_(&mut r, &mut pos);
        let ttype = i32_(&mut r, &mut pos);
        let ne: Vec<i32> = (0..n_dims).map(|_| i32_(&mut r, &mut pos)).collect();
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).unwrap();
        pos += name.len() as u64;
        let width = match ttype {
            0 => 4,
            1 => 2,
            t => panic!("unexpected tensor type {t}"),
        };
        let size = ne.iter().map(|&d| d as u64).product::<u64>() * width;
        let data = if with_data {
            let mut data = vec![0u8; size as usize];
            r.read_exact(&mut data).unwrap();
            data
        } else {
            r.seek_relative(size as i64).unwrap();
            Vec::new()
        };
        pos += size;
        tensors.push((
            String::from_utf8(name).unwrap(),
            GgmlTensor { ne, ttype, data },
        ));
    }
    assert_eq!(pos, len, "the tensors end at the end of the file");
    GgmlFile {
        header,
        mel_rows,
        mel_cols,
        mel,
        vocab,
        tensors,
    }
}
