//! The CTranslate2 → ggml converter on small synthetic models written here, read back with
//! an independent reader.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{GgmlFile, read_ggml, temp_dir};
use switchboard_whisper::{ModelHparams, WhisperError, convert_ct2_to_ggml};

// A 1-layer model: width 8, 2 heads, 4 mel bands, 6 audio and 5 text positions, 12 tokens.
const S: usize = 8;
const MELS: usize = 4;
const AUDIO_CTX: usize = 6;
const TEXT_CTX: usize = 5;
const VOCAB: usize = 12;
const HEADS: i16 = 2;

/// CTranslate2 data type codes.
const F32: u8 = 0;
const I8: u8 = 1;
const I16: u8 = 2;
const F16: u8 = 4;

/// IEEE half → single, written independently of the crate's version.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 => panic!("test values are finite"),
        _ => sign * (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// Deterministic finite half-precision values.
struct Halves(u64);

impl Halves {
    fn next(&mut self) -> u16 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let h = (self.0 >> 16) as u16;
        if (h >> 10) & 0x1f == 0x1f {
            h & !0x4000
        } else {
            h
        } // no inf/NaN
    }
}

/// A variable of the synthetic model, with its values as half-precision bits.
#[derive(Clone)]
struct Var {
    dims: Vec<usize>,
    values: Vec<u16>,
}

/// Builds CTranslate2 `model.bin` files.
#[derive(Clone)]
struct Ct2 {
    vars: BTreeMap<String, Var>,
    /// Non-float variables: (dims, dtype, raw bytes).
    raw: BTreeMap<String, (Vec<usize>, u8, Vec<u8>)>,
    version: u32,
    spec: String,
}

impl Ct2 {
    fn whisper() -> Self {
        let mut rng = Halves(0x9e37_79b9_7f4a_7c15);
        let mut vars = BTreeMap::new();
        let mut add = |name: String, dims: &[usize]| {
            let n = dims.iter().product();
            let values = (0..n).map(|_| rng.next()).collect();
            vars.insert(
                name,
                Var {
                    dims: dims.to_vec(),
                    values,
                },
            );
        };
        let linear = |add: &mut dyn FnMut(String, &[usize]), p: &str, out: usize, inp: usize| {
            add(format!("{p}/weight"), &[out, inp]);
            add(format!("{p}/bias"), &[out]);
        };
        let norm = |add: &mut dyn FnMut(String, &[usize]), p: &str| {
            add(format!("{p}/gamma"), &[S]);
            add(format!("{p}/beta"), &[S]);
        };
        add("encoder/conv1/weight".into(), &[S, MELS, 3]);
        add("encoder/conv1/bias".into(), &[S]);
        add("encoder/conv2/weight".into(), &[S, S, 3]);
        add("encoder/conv2/bias".into(), &[S]);
        add(
            "encoder/position_encodings/encodings".into(),
            &[AUDIO_CTX, S],
        );
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            linear(&mut add, &format!("{l}/self_attention/linear_0"), 3 * S, S);
            linear(&mut add, &format!("{l}/self_attention/linear_1"), S, S);
            norm(&mut add, &format!("{l}/self_attention/layer_norm"));
            linear(&mut add, &format!("{l}/ffn/linear_0"), 4 * S, S);
            linear(&mut add, &format!("{l}/ffn/linear_1"), S, 4 * S);
            norm(&mut add, &format!("{l}/ffn/layer_norm"));
            norm(&mut add, &format!("{side}/layer_norm"));
        }
        linear(&mut add, "decoder/layer_0/attention/linear_0", S, S);
        linear(&mut add, "decoder/layer_0/attention/linear_1", 2 * S, S);
        linear(&mut add, "decoder/layer_0/attention/linear_2", S, S);
        norm(&mut add, "decoder/layer_0/attention/layer_norm");
        add("decoder/embeddings/weight".into(), &[VOCAB, S]);
        add(
            "decoder/position_encodings/encodings".into(),
            &[TEXT_CTX, S],
        );
        let mut raw = BTreeMap::new();
        for side in ["encoder", "decoder"] {
            raw.insert(
                format!("{side}/num_heads"),
                (vec![], I16, HEADS.to_le_bytes().to_vec()),
            );
        }
        raw.insert("decoder/activation".into(), (vec![], I8, vec![3]));
        Ct2 {
            vars,
            raw,
            version: 6,
            spec: "WhisperSpec".into(),
        }
    }

    /// The file, with float variables stored as `dtype` (F16 or F32).
    fn bytes(&self, dtype: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        out.extend_from_slice(&self.version.to_le_bytes());
        string(&mut out, &self.spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&((self.vars.len() + self.raw.len()) as u32).to_le_bytes());
        let header = |out: &mut Vec<u8>, name: &str, dims: &[usize], dtype: u8, n: usize| {
            string(out, name);
            out.push(dims.len() as u8);
            for &d in dims {
                out.extend_from_slice(&(d as u32).to_le_bytes());
            }
            out.push(dtype);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        };
        for (name, var) in &self.vars {
            let data: Vec<u8> = match dtype {
                F16 => var.values.iter().flat_map(|h| h.to_le_bytes()).collect(),
                _ => var
                    .values
                    .iter()
                    .flat_map(|&h| half_to_f32(h).to_le_bytes())
                    .collect(),
            };
            header(&mut out, name, &var.dims, dtype, data.len());
            out.extend_from_slice(&data);
        }
        for (name, (dims, dtype, data)) in &self.raw {
            header(&mut out, name, dims, *dtype, data.len());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&1u32.to_le_bytes());
        string(&mut out, "decoder/projection/weight");
        string(&mut out, "decoder/embeddings/weight");
        out
    }

    fn var(&self, name: &str) -> &Var {
        &self.vars[name]
    }
}

/// `mel_filters.npz` with a `mel_4` array (and a decoy), deflated like NumPy's
/// `savez_compressed`.
fn mel_values(rows: usize) -> Vec<f32> {
    (0..rows * 201).map(|i| i as f32 * 0.25 - 7.0).collect()
}

fn write_assets(dir: &Path) {
    let file = std::fs::File::create(dir.join("mel_filters.npz")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for rows in [MELS, 3] {
        let header =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 201), }}");
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        let padded = format!("{header:<117}\n");
        npy.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        npy.extend_from_slice(padded.as_bytes());
        let mut values = mel_values(rows);
        if rows != MELS {
            values.iter_mut().for_each(|v| *v = -1.0);
        }
        npy.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        zip.start_file(format!("mel_{rows}.npy"), options).unwrap();
        zip.write_all(&npy).unwrap();
    }
    zip.finish().unwrap();
    // A small English vocabulary (the model has 12 < 51,865 tokens); `=` is the empty token.
    std::fs::write(
        dir.join("gpt2.tiktoken"),
        "IQ== 0\nIGhlbGxv 1\n= 2\nw6k= 3\n",
    )
    .unwrap();
    std::fs::write(dir.join("multilingual.tiktoken"), "eA== 0\n").unwrap();
}

struct Fixture {
    dir: PathBuf,
    model: PathBuf,
    out: PathBuf,
}

fn fixture(name: &str, model: &[u8]) -> Fixture {
    let dir = temp_dir(name);
    write_assets(&dir);
    let path = dir.join("model.bin");
    std::fs::write(&path, model).unwrap();
    Fixture {
        out: dir.join("out/ggml-test.bin"),
        model: path,
        dir,
    }
}

fn rows(var: &Var, from: usize, to: usize) -> Vec<u16> {
    let width = var.values.len() / var.dims[0];
    var.values[from * width..to * width].to_vec()
}

fn f16_bytes(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|h| h.to_le_bytes()).collect()
}

fn f32_bytes(values: &[u16]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&h| half_to_f32(h).to_le_bytes())
        .collect()
}

/// Expected output tensors: name → (ne, type, data).
type Expected = BTreeMap<String, (Vec<i32>, i32, Vec<u8>)>;

struct Expect<'a> {
    model: &'a Ct2,
    tensors: Expected,
}

impl Expect<'_> {
    fn put(&mut self, name: &str, dims: &[usize], half: bool, values: &[u16]) {
        let ne = dims.iter().rev().map(|&d| d as i32).collect();
        let data = if half {
            f16_bytes(values)
        } else {
            f32_bytes(values)
        };
        self.tensors
            .insert(name.to_owned(), (ne, i32::from(half), data));
    }

    fn whole(&mut self, name: &str, dims: &[usize], half: bool, source: &str) {
        let values = self.model.var(source).values.clone();
        self.put(name, dims, half, &values);
    }

    fn linear(&mut self, to: &str, from: &str, out: usize, inp: usize) {
        self.whole(
            &format!("{to}.weight"),
            &[out, inp],
            true,
            &format!("{from}/weight"),
        );
        self.whole(
            &format!("{to}.bias"),
            &[out],
            false,
            &format!("{from}/bias"),
        );
    }

    fn norm(&mut self, to: &str, from: &str) {
        self.whole(
            &format!("{to}.weight"),
            &[S],
            false,
            &format!("{from}/gamma"),
        );
        self.whole(&format!("{to}.bias"), &[S], false, &format!("{from}/beta"));
    }

    /// Rows `from..to` of `source`.
    fn rows(
        &mut self,
        name: &str,
        dims: &[usize],
        half: bool,
        source: &str,
        from: usize,
        to: usize,
    ) {
        let values = rows(self.model.var(source), from, to);
        self.put(name, dims, half, &values);
    }
}

/// What the converter must write for `model`, derived from the layout whisper.cpp expects.
fn expected_tensors(model: &Ct2) -> Expected {
    let mut e = Expect {
        model,
        tensors: BTreeMap::new(),
    };
    e.whole(
        "encoder.positional_embedding",
        &[AUDIO_CTX, S],
        false,
        "encoder/position_encodings/encodings",
    );
    e.whole(
        "encoder.conv1.weight",
        &[S, MELS, 3],
        true,
        "encoder/conv1/weight",
    );
    e.whole("encoder.conv1.bias", &[S, 1], false, "encoder/conv1/bias");
    e.whole(
        "encoder.conv2.weight",
        &[S, S, 3],
        true,
        "encoder/conv2/weight",
    );
    e.whole("encoder.conv2.bias", &[S, 1], false, "encoder/conv2/bias");
    e.norm("encoder.ln_post", "encoder/layer_norm");
    e.whole(
        "decoder.positional_embedding",
        &[TEXT_CTX, S],
        false,
        "decoder/position_encodings/encodings",
    );
    e.whole(
        "decoder.token_embedding.weight",
        &[VOCAB, S],
        true,
        "decoder/embeddings/weight",
    );
    e.norm("decoder.ln", "decoder/layer_norm");
    for side in ["encoder", "decoder"] {
        let (b, l) = (format!("{side}.blocks.0"), format!("{side}/layer_0"));
        // Fused Q, K, V: rows 0..S, S..2S, 2S..3S; the key bias is dropped.
        let (w, bias) = (
            format!("{l}/self_attention/linear_0/weight"),
            format!("{l}/self_attention/linear_0/bias"),
        );
        e.rows(&format!("{b}.attn.query.weight"), &[S, S], true, &w, 0, S);
        e.rows(&format!("{b}.attn.key.weight"), &[S, S], true, &w, S, 2 * S);
        e.rows(
            &format!("{b}.attn.value.weight"),
            &[S, S],
            true,
            &w,
            2 * S,
            3 * S,
        );
        e.rows(&format!("{b}.attn.query.bias"), &[S], false, &bias, 0, S);
        e.rows(
            &format!("{b}.attn.value.bias"),
            &[S],
            false,
            &bias,
            2 * S,
            3 * S,
        );
        e.linear(
            &format!("{b}.attn.out"),
            &format!("{l}/self_attention/linear_1"),
            S,
            S,
        );
        e.norm(
            &format!("{b}.attn_ln"),
            &format!("{l}/self_attention/layer_norm"),
        );
        e.linear(
            &format!("{b}.mlp.0"),
            &format!("{l}/ffn/linear_0"),
            4 * S,
            S,
        );
        e.linear(
            &format!("{b}.mlp.2"),
            &format!("{l}/ffn/linear_1"),
            S,
            4 * S,
        );
        e.norm(&format!("{b}.mlp_ln"), &format!("{l}/ffn/layer_norm"));
    }
    // Cross-attention: Q alone, K and V fused (rows 0..S, S..2S), the output projection.
    let (b, l) = ("decoder.blocks.0.cross_attn", "decoder/layer_0/attention");
    let (w, bias) = (format!("{l}/linear_1/weight"), format!("{l}/linear_1/bias"));
    e.linear(&format!("{b}.query"), &format!("{l}/linear_0"), S, S);
    e.rows(&format!("{b}.key.weight"), &[S, S], true, &w, 0, S);
    e.rows(&format!("{b}.value.weight"), &[S, S], true, &w, S, 2 * S);
    e.rows(&format!("{b}.value.bias"), &[S], false, &bias, S, 2 * S);
    e.linear(&format!("{b}.out"), &format!("{l}/linear_2"), S, S);
    e.norm("decoder.blocks.0.cross_attn_ln", &format!("{l}/layer_norm"));
    e.tensors
}

fn check_output(model: &Ct2, ggml: &GgmlFile) {
    // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    // n_text_state, n_text_head, n_text_layer, n_mels, ftype (f16)
    let h = |v: usize| v as i32;
    assert_eq!(
        ggml.header,
        [
            h(VOCAB),
            h(AUDIO_CTX),
            h(S),
            2,
            1,
            h(TEXT_CTX),
            h(S),
            2,
            1,
            h(MELS),
            1
        ]
    );
    assert_eq!((ggml.mel_rows, ggml.mel_cols), (MELS as i32, 201));
    assert_eq!(ggml.mel, mel_values(MELS));
    // gpt2.tiktoken (the model is English-only), in rank order, `=` decoded as empty.
    assert_eq!(
        ggml.vocab,
        [
            b"!".to_vec(),
            b" hello".to_vec(),
            Vec::new(),
            "\u{e9}".as_bytes().to_vec()
        ]
    );
    let expected = expected_tensors(model);
    let names: Vec<&String> = ggml.tensors.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "no tensor twice: {names:?}");
    assert_eq!(
        sorted,
        expected.keys().collect::<Vec<_>>(),
        "the tensor set (no key biases)"
    );
    assert!(!names.iter().any(|n| n.contains("key.bias")));
    for (name, tensor) in &ggml.tensors {
        let (ne, ttype, data) = &expected[name];
        assert_eq!(&tensor.ne, ne, "{name}: dims");
        assert_eq!(&tensor.ttype, ttype, "{name}: type");
        assert!(&tensor.data == data, "{name}: values differ");
    }
    // whisper.cpp's order: the encoder first, starting with its positional embedding.
    assert_eq!(names[0], "encoder.positional_embedding");
    assert_eq!(names.last().unwrap().as_str(), "decoder.ln.bias");
}

#[test]
fn converts_a_synthetic_model_and_reads_it_back() {
    let model = Ct2::whisper();
    // A non-zero key bias, to show it is dropped rather than copied anywhere.
    assert!(
        rows(
            model.var("encoder/layer_0/self_attention/linear_0/bias"),
            S,
            2 * S
        )
        .iter()
        .any(|&h| h & 0x7fff != 0)
    );
    let f = fixture("roundtrip", &model.bytes(F16));
    let report = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).expect("convert");
    assert_eq!(report.output, f.out);
    assert_eq!(report.bytes, std::fs::metadata(&f.out).unwrap().len());
    assert_eq!(report.vocab_tokens, 4);
    assert_eq!(report.tensors, expected_tensors(&model).len());
    assert_eq!(
        report.hparams,
        ModelHparams {
            n_vocab: VOCAB as u32,
            n_audio_ctx: AUDIO_CTX as u32,
            n_audio_state: S as u32,
            n_audio_head: 2,
            n_audio_layer: 1,
            n_text_ctx: TEXT_CTX as u32,
            n_text_state: S as u32,
            n_text_head: 2,
            n_text_layer: 1,
            n_mels: MELS as u32,
        }
    );
    check_output(&model, &read_ggml(&f.out, true));
    // Only the output is left: the temporary file was renamed.
    let left: Vec<_> = std::fs::read_dir(f.out.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn float32_input_gives_the_same_file() {
    let model = Ct2::whisper();
    let a = fixture("f16-input", &model.bytes(F16));
    let b = fixture("f32-input", &model.bytes(F32));
    convert_ct2_to_ggml(&a.model, &a.dir, &a.out).unwrap();
    convert_ct2_to_ggml(&b.model, &b.dir, &b.out).unwrap();
    assert!(std::fs::read(&a.out).unwrap() == std::fs::read(&b.out).unwrap());
}

#[test]
fn missing_head_counts_default_to_64_wide_heads() {
    let mut model = Ct2::whisper();
    model.raw.remove("encoder/num_heads");
    model.raw.remove("decoder/num_heads");
    let f = fixture("no-heads", &model.bytes(F16));
    let report = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).unwrap();
    assert_eq!(
        (report.hparams.n_audio_head, report.hparams.n_text_head),
        (1, 1)
    );
}

/// Converts `bytes` and expects it to fail without leaving any output.
fn convert_err(name: &str, bytes: &[u8]) -> (WhisperError, Fixture) {
    let f = fixture(name, bytes);
    std::fs::create_dir_all(f.out.parent().unwrap()).unwrap();
    std::fs::write(&f.out, b"previous").unwrap();
    let err = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).expect_err("conversion must fail");
    assert_eq!(
        std::fs::read(&f.out).unwrap(),
        b"previous",
        "the old output is untouched"
    );
    let left = std::fs::read_dir(f.out.parent().unwrap()).unwrap().count();
    assert_eq!(left, 1, "no temporary file is left behind");
    (err, f)
}

#[test]
fn truncated_models_give_a_clear_error() {
    let full = Ct2::whisper().bytes(F16);
    // In the version, the spec name, a variable header, a variable's data, the aliases.
    for cut in [2, 9, 30, 200, full.len() / 2, full.len() - 3] {
        let (err, f) = convert_err(&format!("cut-{cut}"), &full[..cut]);
        let message = err.to_string();
        assert!(
            matches!(err, WhisperError::Corrupt { .. }),
            "cut at {cut}: {err:?}"
        );
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
        assert!(
            message.contains(&f.model.display().to_string()),
            "{message}"
        );
        assert!(message.contains("setup.sh"), "{message}");
    }
}

#[test]
fn malformed_models_give_a_clear_error() {
    let base = Ct2::whisper();
    let expect = |name: &str, model: &Ct2, needle: &str| {
        let (err, _) = convert_err(name, &model.bytes(F16));
        assert!(err.to_string().contains(needle), "{name}: {err}");
        err
    };
    let mut m = base.clone();
    m.version = 5;
    expect("version", &m, "binary version 5");
    let mut m = base.clone();
    m.spec = "TransformerSpec".into();
    let err = expect("spec", &m, "not a Whisper model");
    assert!(matches!(err, WhisperError::Unsupported { .. }));
    let mut m = base.clone();
    m.vars.remove("decoder/layer_norm/gamma");
    expect("missing", &m, "`decoder/layer_norm/gamma` is missing");
    let mut m = base.clone();
    let var = m
        .vars
        .get_mut("encoder/layer_0/ffn/linear_0/weight")
        .unwrap();
    var.dims = vec![30, S];
    var.values.truncate(30 * S);
    expect(
        "shape",
        &m,
        "`encoder/layer_0/ffn/linear_0/weight` has shape [30, 8]",
    );
    let mut m = base.clone();
    m.vars.remove("decoder/layer_0/attention/linear_1/weight");
    m.raw.insert(
        "decoder/layer_0/attention/linear_1/weight".into(),
        (vec![2 * S, S], I8, vec![0; 2 * S * S]),
    );
    let err = expect("int8", &m, "quantized");
    assert!(matches!(err, WhisperError::Unsupported { .. }));

    // A byte count that does not match the shape.
    let mut bytes = base.bytes(F16);
    let name = b"decoder/embeddings/weight\0";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let size_at = at + 1 + 2 * 4 + 1; // rank, two dims, dtype
    bytes[size_at..size_at + 4].copy_from_slice(&7u32.to_le_bytes());
    let (err, _) = convert_err("nbytes", &bytes);
    assert!(err.to_string().contains("but 7 bytes"), "{err}");
}

#[test]
fn missing_inputs_name_the_file_and_the_fix() {
    let f = fixture("missing", &Ct2::whisper().bytes(F16));
    let nowhere = f.dir.join("nowhere/model.bin");
    let err = convert_ct2_to_ggml(&nowhere, &f.dir, &f.out).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, WhisperError::MissingFile { .. }), "{err:?}");
    assert!(
        message.contains(&nowhere.display().to_string()),
        "{message}"
    );
    assert!(message.contains("scripts/setup.sh"), "{message}");
    assert!(message.contains("SWITCHBOARD_WHISPER_CT2_DIR"), "{message}");

    std::fs::remove_file(f.dir.join("mel_filters.npz")).unwrap();
    let err = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).unwrap_err();
    assert!(err.to_string().contains("mel_filters.npz"), "{err}");
    assert!(
        err.to_string().contains("SWITCHBOARD_WHISPER_ASSETS"),
        "{err}"
    );

    write_assets(&f.dir);
    std::fs::remove_file(f.dir.join("gpt2.tiktoken")).unwrap();
    let err = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).unwrap_err();
    assert!(err.to_string().contains("gpt2.tiktoken"), "{err}");
    assert!(!f.out.exists());
}

#[test]
fn corrupt_assets_give_a_clear_error() {
    let f = fixture("bad-assets", &Ct2::whisper().bytes(F16));
    std::fs::write(f.dir.join("mel_filters.npz"), b"not a zip").unwrap();
    let err = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).unwrap_err();
    assert!(matches!(err, WhisperError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("mel_filters.npz"), "{err}");

    write_assets(&f.dir);
    std::fs::write(f.dir.join("gpt2.tiktoken"), "IQ== 0\nIGhlbGxv 5\n").unwrap();
    let err = convert_ct2_to_ggml(&f.model, &f.dir, &f.out).unwrap_err();
    assert!(err.to_string().contains("rank 5 out of order"), "{err}");
    assert!(!f.out.exists());
}
