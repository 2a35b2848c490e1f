//! whisper.cpp's legacy ggml model format: writing primitives and a structural check.
//!
//! Layout (little-endian i32 unless stated): magic `0x67676d6c`; n_vocab, n_audio_ctx,
//! n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
//! n_text_layer, n_mels, ftype; the mel filter bank (rows, cols, rows × cols f32); the
//! vocabulary (count, then per token a u32 length and the bytes); then tensors until the end
//! of the file: n_dims, name length, type, the dims innermost first, the name, the data.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::WhisperError;
use crate::convert::ModelHparams;

pub(crate) const MAGIC: u32 = 0x6767_6d6c;
const WHAT: &str = "whisper.cpp ggml model";

/// ggml tensor type codes used in the files this crate writes.
pub(crate) const TYPE_F32: i32 = 0;
pub(crate) const TYPE_F16: i32 = 1;

/// A writer that counts the bytes it wrote.
pub(crate) struct CountingWriter<W> {
    inner: W,
    pub written: u64,
}

impl<W: Write> CountingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        CountingWriter { inner, written: 0 }
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    pub(crate) fn bytes(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    pub(crate) fn i32(&mut self, value: i32) -> io::Result<()> {
        self.bytes(&value.to_le_bytes())
    }
}

/// What [`inspect`] found in a ggml file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GgmlSummary {
    pub hparams: ModelHparams,
    pub ftype: i32,
    pub vocab_tokens: usize,
    pub tensors: usize,
    pub bytes: u64,
}

/// (elements per block, bytes per block) of a ggml tensor type, for the types whisper.cpp
/// models use (float and the quantizations of whisper.cpp's `quantize`).
fn type_block(ttype: i32) -> Option<(u64, u64)> {
    Some(match ttype {
        0 => (1, 4),     // f32
        1 => (1, 2),     // f16
        2 => (32, 18),   // q4_0
        3 => (32, 20),   // q4_1
        6 => (32, 22),   // q5_0
        7 => (32, 24),   // q5_1
        8 => (32, 34),   // q8_0
        10 => (256, 84), // q2_k
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210), // q6_k
        _ => return None,
    })
}

struct Reader {
    file: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Reader {
    fn need(&self, n: u64, what: &str, path: &Path) -> Result<(), WhisperError> {
        if self.len - self.pos < n {
            Err(WhisperError::corrupt(
                WHAT,
                path,
                format!(
                    "truncated: the file ends at byte {} while reading {what}",
                    self.len
                ),
            ))
        } else {
            Ok(())
        }
    }

    fn i32(&mut self, what: &str, path: &Path) -> Result<i32, WhisperError> {
        self.need(4, what, path)?;
        let mut b = [0u8; 4];
        self.file
            .read_exact(&mut b)
            .map_err(|e| WhisperError::io("read", path, e))?;
        self.pos += 4;
        Ok(i32::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64, what: &str, path: &Path) -> Result<(), WhisperError> {
        self.need(n, what, path)?;
        self.file
            .seek_relative(n as i64)
            .map_err(|e| WhisperError::io("read", path, e))?;
        self.pos += n;
        Ok(())
    }
}

/// Checks that `path` is a complete ggml Whisper model: header, mel filters, vocabulary and
/// every tensor header, with the data sizes adding up to the file's length. Reads only the
/// headers (a few milliseconds). Tensors of a type it does not know end the walk early.
pub(crate) fn inspect(path: &Path) -> Result<GgmlSummary, WhisperError> {
    let file = File::open(path).map_err(|e| WhisperError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| WhisperError::io("read", path, e))?
        .len();
    let mut r = Reader {
        file: BufReader::with_capacity(1 << 16, file),
        pos: 0,
        len,
    };
    let bad = |message: String| WhisperError::corrupt(WHAT, path, message);
    let magic = r.i32("the magic", path)? as u32;
    if magic != MAGIC {
        return Err(bad(format!(
            "magic {magic:#010x}, expected {MAGIC:#010x} (\"ggml\")"
        )));
    }
    let mut h = [0u32; 10];
    const NAMES: [&str; 10] = [
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
    ];
    const LIMITS: [u32; 10] = [
        1 << 20,
        1 << 16,
        1 << 16,
        1024,
        1024,
        1 << 16,
        1 << 16,
        1024,
        1024,
        1024,
    ];
    for i in 0..10 {
        let v = r.i32(NAMES[i], path)?;
        if v <= 0 || v as u32 > LIMITS[i] {
            return Err(bad(format!("{} is {v}", NAMES[i])));
        }
        h[i] = v as u32;
    }
    let hparams = ModelHparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
    };
    let ftype = r.i32("ftype", path)?;
    let rows = r.i32("the mel filter rows", path)?;
    let cols = r.i32("the mel filter columns", path)?;
    if !(1..=1024).contains(&rows) || !(1..=4096).contains(&cols) {
        return Err(bad(format!("mel filter bank of {rows} × {cols}")));
    }
    r.skip(rows as u64 * cols as u64 * 4, "the mel filters", path)?;
    let vocab = r.i32("the vocabulary size", path)?;
    if vocab < 0 || vocab as u32 > hparams.n_vocab {
        return Err(bad(format!(
            "{vocab} vocabulary entries for n_vocab {}",
            hparams.n_vocab
        )));
    }
    for i in 0..vocab {
        let n = r.i32("a vocabulary entry", path)?;
        if !(0..=1 << 16).contains(&n) {
            return Err(bad(format!("vocabulary entry {i} is {n} bytes long")));
        }
        r.skip(n as u64, "a vocabulary entry", path)?;
    }
    let mut tensors = 0;
    while r.pos < r.len {
        let n_dims = r.i32("a tensor header", path)?;
        let name_len = r.i32("a tensor header", path)?;
        let ttype = r.i32("a tensor header", path)?;
        if !(1..=4).contains(&n_dims) || !(1..=1024).contains(&name_len) {
            return Err(bad(format!(
                "tensor {tensors} has {n_dims} dims and a {name_len}-byte name"
            )));
        }
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = r.i32("a tensor shape", path)?;
            if d <= 0 {
                return Err(bad(format!("tensor {tensors} has a dimension of {d}")));
            }
            elements = elements.saturating_mul(d as u64);
        }
        r.skip(name_len as u64, "a tensor name", path)?;
        let Some((block, block_bytes)) = type_block(ttype) else {
            // A type this check does not know: trust whisper.cpp to validate the rest.
            tracing::debug!(path = %path.display(), ttype, "ggml check stopped at an unknown tensor type");
            tensors += 1;
            break;
        };
        if !elements.is_multiple_of(block) {
            return Err(bad(format!(
                "tensor {tensors} has {elements} elements, not a multiple of its block size {block}"
            )));
        }
        let size = (elements / block).saturating_mul(block_bytes);
        r.skip(size, "tensor data", path)?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(bad("it has no tensors".into()));
    }
    Ok(GgmlSummary {
        hparams,
        ftype,
        vocab_tokens: vocab as usize,
        tensors,
        bytes: len,
    })
}
