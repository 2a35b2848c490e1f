//! CTranslate2 Whisper → whisper.cpp ggml conversion.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ct2::{Ct2Model, DType, Variable};
use crate::ggml::{self, CountingWriter, TYPE_F16, TYPE_F32};
use crate::{
    ASSETS_ENV, CT2_DIR_ENV, GPT2_VOCAB_FILE, MEL_FILTERS_FILE, MULTILINGUAL_VOCAB_FILE,
    WhisperError, npy, tiktoken,
};

/// Whisper's dimensions, as stored in a ggml file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelHparams {
    /// Vocabulary size, special tokens included (51,865 for the multilingual models).
    pub n_vocab: u32,
    /// Encoder positions (1,500 = 30 s).
    pub n_audio_ctx: u32,
    /// Encoder width.
    pub n_audio_state: u32,
    /// Encoder attention heads.
    pub n_audio_head: u32,
    /// Encoder layers.
    pub n_audio_layer: u32,
    /// Decoder positions (448).
    pub n_text_ctx: u32,
    /// Decoder width.
    pub n_text_state: u32,
    /// Decoder attention heads.
    pub n_text_head: u32,
    /// Decoder layers.
    pub n_text_layer: u32,
    /// Mel bands of the input (80, or 128 for large-v3).
    pub n_mels: u32,
}

impl ModelHparams {
    /// Whether the model is multilingual (its vocabulary is `multilingual.tiktoken`).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51_865
    }
}

/// What [`convert_ct2_to_ggml`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    /// The ggml file.
    pub output: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Tensors written.
    pub tensors: usize,
    /// Vocabulary entries written (the special tokens are implied by `n_vocab`).
    pub vocab_tokens: usize,
    /// The model's dimensions.
    pub hparams: ModelHparams,
    /// Wall time of the conversion.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Half precision.
    F16,
    /// Single precision.
    F32,
    /// Single precision, a 1-D bias written as an `[n, 1]` matrix (the conv biases).
    F32Column,
}

/// One tensor of the output: which variable (or which of `parts` equal row blocks of it)
/// it comes from, and the shape it must have.
struct Planned {
    name: String,
    source: String,
    part: Option<(usize, usize)>,
    out: Out,
    shape: Vec<usize>,
}

struct Plan {
    tensors: Vec<Planned>,
}

impl Plan {
    fn add(&mut self, name: String, source: String, out: Out, shape: &[usize]) {
        self.tensors.push(Planned {
            name,
            source,
            part: None,
            out,
            shape: shape.to_vec(),
        });
    }

    fn part(
        &mut self,
        name: String,
        source: String,
        part: (usize, usize),
        out: Out,
        shape: &[usize],
    ) {
        self.tensors.push(Planned {
            name,
            source,
            part: Some(part),
            out,
            shape: shape.to_vec(),
        });
    }

    /// A linear layer (`weight` [out, inp], `bias` [out]).
    fn linear(&mut self, name: &str, source: &str, out: usize, inp: usize) {
        self.add(
            format!("{name}.weight"),
            format!("{source}/weight"),
            Out::F16,
            &[out, inp],
        );
        self.add(
            format!("{name}.bias"),
            format!("{source}/bias"),
            Out::F32,
            &[out],
        );
    }

    fn layer_norm(&mut self, name: &str, source: &str, n: usize) {
        self.add(
            format!("{name}.weight"),
            format!("{source}/gamma"),
            Out::F32,
            &[n],
        );
        self.add(
            format!("{name}.bias"),
            format!("{source}/beta"),
            Out::F32,
            &[n],
        );
    }

    /// Self-attention: CTranslate2 fuses Q, K and V into `linear_0` (rows Q, then K, then V).
    /// whisper.cpp's key projection has no bias: the one stored here is zero, and a key bias
    /// only adds the same value to every attention logit of a query, which softmax ignores,
    /// so dropping it is exact.
    fn self_attention(&mut self, name: &str, source: &str, n: usize) {
        let fused = format!("{source}/linear_0");
        for (i, proj) in ["query", "key", "value"].into_iter().enumerate() {
            self.part(
                format!("{name}.{proj}.weight"),
                format!("{fused}/weight"),
                (i, 3),
                Out::F16,
                &[n, n],
            );
            if proj != "key" {
                self.part(
                    format!("{name}.{proj}.bias"),
                    format!("{fused}/bias"),
                    (i, 3),
                    Out::F32,
                    &[n],
                );
            }
        }
        self.linear(&format!("{name}.out"), &format!("{source}/linear_1"), n, n);
    }

    /// Cross-attention: `linear_0` is Q, `linear_1` is K and V fused, `linear_2` the output.
    fn cross_attention(&mut self, name: &str, source: &str, n: usize) {
        self.linear(
            &format!("{name}.query"),
            &format!("{source}/linear_0"),
            n,
            n,
        );
        let fused = format!("{source}/linear_1");
        self.part(
            format!("{name}.key.weight"),
            format!("{fused}/weight"),
            (0, 2),
            Out::F16,
            &[n, n],
        );
        self.part(
            format!("{name}.value.weight"),
            format!("{fused}/weight"),
            (1, 2),
            Out::F16,
            &[n, n],
        );
        self.part(
            format!("{name}.value.bias"),
            format!("{fused}/bias"),
            (1, 2),
            Out::F32,
            &[n],
        );
        self.linear(&format!("{name}.out"), &format!("{source}/linear_2"), n, n);
    }

    /// The tensors of whisper.cpp's Whisper, in the order of OpenAI's checkpoints.
    fn whisper(h: &ModelHparams) -> Plan {
        let mut p = Plan {
            tensors: Vec::new(),
        };
        let (ctx, s, mels) = (
            h.n_audio_ctx as usize,
            h.n_audio_state as usize,
            h.n_mels as usize,
        );
        p.add(
            "encoder.positional_embedding".into(),
            "encoder/position_encodings/encodings".into(),
            Out::F32,
            &[ctx, s],
        );
        p.add(
            "encoder.conv1.weight".into(),
            "encoder/conv1/weight".into(),
            Out::F16,
            &[s, mels, 3],
        );
        p.add(
            "encoder.conv1.bias".into(),
            "encoder/conv1/bias".into(),
            Out::F32Column,
            &[s],
        );
        p.add(
            "encoder.conv2.weight".into(),
            "encoder/conv2/weight".into(),
            Out::F16,
            &[s, s, 3],
        );
        p.add(
            "encoder.conv2.bias".into(),
            "encoder/conv2/bias".into(),
            Out::F32Column,
            &[s],
        );
        for i in 0..h.n_audio_layer {
            let (name, src) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
            p.self_attention(&format!("{name}.attn"), &format!("{src}/self_attention"), s);
            p.layer_norm(
                &format!("{name}.attn_ln"),
                &format!("{src}/self_attention/layer_norm"),
                s,
            );
            p.linear(
                &format!("{name}.mlp.0"),
                &format!("{src}/ffn/linear_0"),
                4 * s,
                s,
            );
            p.linear(
                &format!("{name}.mlp.2"),
                &format!("{src}/ffn/linear_1"),
                s,
                4 * s,
            );
            p.layer_norm(
                &format!("{name}.mlp_ln"),
                &format!("{src}/ffn/layer_norm"),
                s,
            );
        }
        p.layer_norm("encoder.ln_post", "encoder/layer_norm", s);

        let (ctx, t, vocab) = (
            h.n_text_ctx as usize,
            h.n_text_state as usize,
            h.n_vocab as usize,
        );
        p.add(
            "decoder.positional_embedding".into(),
            "decoder/position_encodings/encodings".into(),
            Out::F32,
            &[ctx, t],
        );
        p.add(
            "decoder.token_embedding.weight".into(),
            "decoder/embeddings/weight".into(),
            Out::F16,
            &[vocab, t],
        );
        for i in 0..h.n_text_layer {
            let (name, src) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
            p.self_attention(&format!("{name}.attn"), &format!("{src}/self_attention"), t);
            p.layer_norm(
                &format!("{name}.attn_ln"),
                &format!("{src}/self_attention/layer_norm"),
                t,
            );
            p.cross_attention(
                &format!("{name}.cross_attn"),
                &format!("{src}/attention"),
                t,
            );
            p.layer_norm(
                &format!("{name}.cross_attn_ln"),
                &format!("{src}/attention/layer_norm"),
                t,
            );
            p.linear(
                &format!("{name}.mlp.0"),
                &format!("{src}/ffn/linear_0"),
                4 * t,
                t,
            );
            p.linear(
                &format!("{name}.mlp.2"),
                &format!("{src}/ffn/linear_1"),
                t,
                4 * t,
            );
            p.layer_norm(
                &format!("{name}.mlp_ln"),
                &format!("{src}/ffn/layer_norm"),
                t,
            );
        }
        p.layer_norm("decoder.ln", "decoder/layer_norm", t);
        p
    }
}

/// Converts a CTranslate2 Whisper model (`model.bin`, float16/float32/bfloat16) to
/// whisper.cpp's ggml format, with the mel filters and vocabulary from openai-whisper's
/// `assets_dir` (`mel_filters.npz` and `multilingual.tiktoken` or `gpt2.tiktoken`).
///
/// Matrices are written as float16, vectors, the conv biases and the positional embeddings as
/// float32, like whisper.cpp's `convert-pt-to-ggml.py`. The output is written to a temporary
/// file next to `out_path` and renamed into place, so `out_path` is either absent, the old
/// file, or the complete new one. Missing or malformed input fails with an error naming the
/// file; nothing is written then.
///
/// ```no_run
/// use switchboard_whisper::convert_ct2_to_ggml;
///
/// let report = convert_ct2_to_ggml(
///     "whisper-base-ct2/model.bin",
///     "openai-whisper-assets",
///     "ggml-base.bin",
/// )?;
/// println!("{} bytes in {:?}", report.bytes, report.elapsed);
/// # Ok::<(), switchboard_whisper::WhisperError>(())
/// ```
pub fn convert_ct2_to_ggml(
    ct2_model: impl AsRef<Path>,
    assets_dir: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
) -> Result<ConvertReport, WhisperError> {
    let (ct2_model, assets_dir, out_path) =
        (ct2_model.as_ref(), assets_dir.as_ref(), out_path.as_ref());
    let started = Instant::now();
    require(ct2_model, "CTranslate2 Whisper model", CT2_DIR_ENV)?;
    let mel_path = assets_dir.join(MEL_FILTERS_FILE);
    require(
        &mel_path,
        "mel filter bank (openai-whisper assets)",
        ASSETS_ENV,
    )?;

    let mut model = Ct2Model::open(ct2_model)?;
    if model.spec != "WhisperSpec" {
        return Err(WhisperError::Unsupported {
            path: ct2_model.to_owned(),
            message: format!("it is a CTranslate2 `{}`, not a Whisper model", model.spec),
        });
    }
    if let Some((name, var)) = model
        .variables
        .iter()
        .find(|(name, var)| name.ends_with("/weight") && !var.dtype.is_float())
    {
        return Err(WhisperError::Unsupported {
            path: ct2_model.to_owned(),
            message: format!(
                "it is quantized (`{name}` is {:?}); convert Whisper with `--quantization float16`",
                var.dtype
            ),
        });
    }
    let hparams = hparams(&mut model)?;
    let vocab_path = assets_dir.join(if hparams.is_multilingual() {
        MULTILINGUAL_VOCAB_FILE
    } else {
        GPT2_VOCAB_FILE
    });
    require(
        &vocab_path,
        "Whisper vocabulary (openai-whisper assets)",
        ASSETS_ENV,
    )?;
    let mel = npy::read_npz_matrix(&mel_path, &format!("mel_{}", hparams.n_mels))?;
    let vocab = tiktoken::read_tiktoken(&vocab_path)?;
    if vocab.len() > hparams.n_vocab as usize {
        return Err(WhisperError::corrupt(
            "Whisper vocabulary",
            &vocab_path,
            format!("{} tokens for a model of {}", vocab.len(), hparams.n_vocab),
        ));
    }
    let plan = Plan::whisper(&hparams);
    // Check every tensor before writing anything.
    for t in &plan.tensors {
        check_shape(&model, t)?;
    }

    let mut temp = TempFile::create(out_path)?;
    let file = temp.file.take().ok_or_else(|| {
        WhisperError::io(
            "write",
            &temp.path,
            std::io::Error::other("temporary file closed"),
        )
    })?;
    let mut w = CountingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let io = |e| WhisperError::io("write", &temp.path, e);
    write_header(&mut w, &hparams).map_err(io)?;
    w.i32(dim(mel.rows)).map_err(io)?;
    w.i32(dim(mel.cols)).map_err(io)?;
    let mel_bytes: Vec<u8> = mel.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.bytes(&mel_bytes).map_err(io)?;
    w.i32(dim(vocab.len())).map_err(io)?;
    for token in &vocab {
        w.i32(dim(token.len())).map_err(io)?;
        w.bytes(token).map_err(io)?;
    }
    for t in &plan.tensors {
        let data = tensor_data(&mut model, t)?;
        write_tensor(&mut w, t, &data).map_err(io)?;
    }
    let bytes = w.written;
    let file = w
        .into_inner()
        .into_inner()
        .map_err(|e| WhisperError::io("write", &temp.path, e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    temp.commit(out_path)?;
    Ok(ConvertReport {
        output: out_path.to_owned(),
        bytes,
        tensors: plan.tensors.len(),
        vocab_tokens: vocab.len(),
        hparams,
        elapsed: started.elapsed(),
    })
}

fn require(path: &Path, what: &'static str, env: &'static str) -> Result<(), WhisperError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(WhisperError::MissingFile {
            what,
            path: path.to_owned(),
            env,
        })
    }
}

/// Sizes in the ggml header are i32; every size here was bounded well below that.
fn dim(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn hparams(model: &mut Ct2Model) -> Result<ModelHparams, WhisperError> {
    let path = model.path().to_owned();
    let shape = |model: &Ct2Model, name: &str, rank: usize| -> Result<Vec<usize>, WhisperError> {
        let var = model.var(name)?;
        if var.dims.len() != rank || var.dims.iter().any(|&d| d == 0 || d > 1 << 20) {
            return Err(WhisperError::corrupt(
                "CTranslate2 Whisper model",
                &path,
                format!("`{name}` has shape {:?}", var.dims),
            ));
        }
        Ok(var.dims.clone())
    };
    let conv1 = shape(model, "encoder/conv1/weight", 3)?;
    let audio_pos = shape(model, "encoder/position_encodings/encodings", 2)?;
    let embeddings = shape(model, "decoder/embeddings/weight", 2)?;
    let text_pos = shape(model, "decoder/position_encodings/encodings", 2)?;
    let layers = |model: &Ct2Model, side: &str| {
        (0u32..)
            .take_while(|i| {
                model
                    .variables
                    .contains_key(&format!("{side}/layer_{i}/self_attention/linear_0/weight"))
            })
            .count() as u32
    };
    let (n_audio_state, n_text_state) = (conv1[0] as u32, embeddings[1] as u32);
    // Whisper's heads are 64 wide; older conversions do not store the head count.
    let heads = |model: &mut Ct2Model, name: &str, state: u32| -> Result<u32, WhisperError> {
        match model.scalar(name)? {
            Some(n) if n > 0 && n <= i64::from(state) && state.is_multiple_of(n as u32) => {
                Ok(n as u32)
            }
            Some(n) => Err(WhisperError::corrupt(
                "CTranslate2 Whisper model",
                &path,
                format!("`{name}` is {n} for a width of {state}"),
            )),
            None => Ok((state / 64).max(1)),
        }
    };
    let h = ModelHparams {
        n_vocab: embeddings[0] as u32,
        n_audio_ctx: audio_pos[0] as u32,
        n_audio_state,
        n_audio_head: heads(model, "encoder/num_heads", n_audio_state)?,
        n_audio_layer: layers(model, "encoder"),
        n_text_ctx: text_pos[0] as u32,
        n_text_state,
        n_text_head: heads(model, "decoder/num_heads", n_text_state)?,
        n_text_layer: layers(model, "decoder"),
        n_mels: conv1[1] as u32,
    };
    if h.n_audio_layer == 0 || h.n_text_layer == 0 {
        return Err(WhisperError::corrupt(
            "CTranslate2 Whisper model",
            &path,
            "the variable `encoder/layer_0/self_attention/linear_0/weight` or `decoder/layer_0/self_attention/linear_0/weight` is missing",
        ));
    }
    if h.n_audio_state != h.n_text_state {
        return Err(WhisperError::Unsupported {
            path,
            message: format!(
                "encoder width {} differs from decoder width {} (whisper.cpp needs them equal)",
                h.n_audio_state, h.n_text_state
            ),
        });
    }
    Ok(h)
}

/// The byte range of `t` inside its source variable, and its shape there.
fn source_range(var: &Variable, t: &Planned) -> Option<(u64, u64, Vec<usize>)> {
    match t.part {
        None => Some((0, var.nbytes, var.dims.clone())),
        Some((index, parts)) => {
            let rows = *var.dims.first()?;
            if !rows.is_multiple_of(parts) {
                return None;
            }
            let part_bytes = var.nbytes / parts as u64;
            let mut dims = var.dims.clone();
            dims[0] = rows / parts;
            Some((index as u64 * part_bytes, part_bytes, dims))
        }
    }
}

fn check_shape(model: &Ct2Model, t: &Planned) -> Result<(), WhisperError> {
    let var = model.var(&t.source)?;
    let dims = source_range(var, t).map(|(_, _, dims)| dims);
    if dims.as_deref() != Some(&t.shape[..]) {
        let of = match t.part {
            Some((i, n)) => format!(" (part {} of {n})", i + 1),
            None => String::new(),
        };
        return Err(WhisperError::corrupt(
            "CTranslate2 Whisper model",
            model.path(),
            format!(
                "`{}` has shape {:?}; {}{of} must be {:?}",
                t.source, var.dims, t.name, t.shape
            ),
        ));
    }
    if !var.dtype.is_float() {
        return Err(WhisperError::Unsupported {
            path: model.path().to_owned(),
            message: format!("`{}` is {:?}, not a float tensor", t.source, var.dtype),
        });
    }
    Ok(())
}

/// The tensor's data in its output type.
fn tensor_data(model: &mut Ct2Model, t: &Planned) -> Result<Vec<u8>, WhisperError> {
    let var = model.var(&t.source)?.clone();
    let (start, len, _) = source_range(&var, t).ok_or_else(|| {
        WhisperError::corrupt(
            "CTranslate2 Whisper model",
            model.path(),
            format!("`{}` cannot be split", t.source),
        )
    })?;
    let raw = model.read(&var, start, len)?;
    Ok(match (t.out, var.dtype) {
        (Out::F16, DType::F16) => raw,
        (Out::F16, _) => map_values(&raw, var.dtype, |v| f32_to_f16(v).to_le_bytes()),
        (Out::F32 | Out::F32Column, DType::F32) => raw,
        (Out::F32 | Out::F32Column, _) => map_values(&raw, var.dtype, f32::to_le_bytes),
    })
}

fn map_values<const N: usize>(raw: &[u8], dtype: DType, f: impl Fn(f32) -> [u8; N]) -> Vec<u8> {
    let width = dtype.size();
    let mut out = Vec::with_capacity(raw.len() / width * N);
    for chunk in raw.chunks_exact(width) {
        let v = match dtype {
            DType::F16 => f16_to_f32(u16::from_le_bytes([chunk[0], chunk[1]])),
            DType::BF16 => {
                f32::from_bits(u32::from(u16::from_le_bytes([chunk[0], chunk[1]])) << 16)
            }
            _ => f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
        };
        out.extend_from_slice(&f(v));
    }
    out
}

fn write_header<W: std::io::Write>(
    w: &mut CountingWriter<W>,
    h: &ModelHparams,
) -> std::io::Result<()> {
    w.i32(ggml::MAGIC as i32)?;
    for v in [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
    ] {
        w.i32(v as i32)?;
    }
    w.i32(1) // ftype: mostly f16
}

fn write_tensor<W: std::io::Write>(
    w: &mut CountingWriter<W>,
    t: &Planned,
    data: &[u8],
) -> std::io::Result<()> {
    let mut shape = t.shape.clone();
    if t.out == Out::F32Column {
        shape.push(1);
    }
    let ttype = if t.out == Out::F16 {
        TYPE_F16
    } else {
        TYPE_F32
    };
    w.i32(dim(shape.len()))?;
    w.i32(dim(t.name.len()))?;
    w.i32(ttype)?;
    for &d in shape.iter().rev() {
        w.i32(dim(d))?;
    }
    w.bytes(t.name.as_bytes())?;
    w.bytes(data)
}

/// A temporary file next to the destination, removed unless committed.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl TempFile {
    fn create(dest: &Path) -> Result<Self, WhisperError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| WhisperError::io("create", &dir, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ggml.bin".into());
        let path = dir.join(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&path).map_err(|e| WhisperError::io("create", &path, e))?;
        Ok(TempFile {
            path,
            file: Some(file),
            committed: false,
        })
    }

    fn commit(mut self, dest: &Path) -> Result<(), WhisperError> {
        std::fs::rename(&self.path, dest).map_err(|e| WhisperError::io("rename into", dest, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// IEEE 754 half → single precision (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: mant × 2^-24.
            let v = mant as f32 / 16_777_216.0;
            if sign != 0 { -v } else { v }
        }
        31 => f32::from_bits(sign | 0x7f80_0000 | (mant << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (mant << 13)),
    }
}

/// Single → half precision, rounding to nearest even; overflow gives ±infinity.
pub(crate) fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let mant = x & 0x7f_ffff;
    if exp == 0xff {
        let nan = if mant != 0 {
            0x200 | (mant >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let q = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        };
        return sign | q as u16;
    }
    let m = mant >> 13;
    let rem = mant & 0x1fff;
    let mut h = ((e as u32) << 10) | m;
    if rem > 0x1000 || (rem == 0x1000 && m & 1 == 1) {
        h += 1; // may carry into the exponent, up to infinity: still correct
    }
    sign | h as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_exactly() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), h, "{h:#06x} -> {f}");
            }
        }
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00); // tie, to even
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02); // tie, to even (up)
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11) + 2f32.powi(-20)), 0x3c01);
        assert_eq!(f32_to_f16(65_504.0), 0x7bff);
        assert_eq!(f32_to_f16(65_519.0), 0x7bff);
        assert_eq!(f32_to_f16(65_520.0), 0x7c00);
        assert_eq!(f32_to_f16(-1e10), 0xfc00);
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000); // tie, to even (zero)
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-24)), 0x0002); // tie, to even
        assert_eq!(f32_to_f16(2f32.powi(-14) * (1.0 - 2f32.powi(-12))), 0x0400); // rounds up into the normals
        assert_eq!(f32_to_f16(1e-10), 0);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
    }
}
