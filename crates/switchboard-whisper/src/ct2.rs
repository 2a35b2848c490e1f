//! Reading CTranslate2 `model.bin` files (binary version 6).
//!
//! Layout (little-endian): u32 version, u16-length-prefixed NUL-terminated spec name, u32
//! spec revision, u32 variable count; each variable: u16-prefixed name, u8 rank, `rank` u32
//! dimensions, u8 data type, u32 byte count, the data; then u32 alias count and alias/target
//! name pairs. The index is read without loading the data; tensors are read on demand.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::WhisperError;

const WHAT: &str = "CTranslate2 model";
/// The only binary version written by current CTranslate2 converters.
pub(crate) const VERSION: u32 = 6;
/// Longest variable or spec name accepted (real ones are under 100 bytes).
const MAX_NAME: usize = 4096;
/// Highest tensor rank accepted.
const MAX_RANK: usize = 8;

/// CTranslate2's data types (`ctranslate2::DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub(crate) fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }
}

/// One variable of the index.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub dims: Vec<usize>,
    pub dtype: DType,
    /// Offset of the data in the file.
    pub offset: u64,
    /// Byte count of the data (= product of dims × dtype size).
    pub nbytes: u64,
}

impl Variable {
    pub(crate) fn elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// An opened `model.bin`: its index and the file to read tensors from.
pub(crate) struct Ct2Model {
    path: PathBuf,
    file: BufReader<File>,
    pub spec: String,
    pub variables: BTreeMap<String, Variable>,
}

struct Cursor<'a> {
    file: &'a mut BufReader<File>,
    path: &'a Path,
    pos: u64,
    len: u64,
}

impl Cursor<'_> {
    fn truncated(&self, what: &str) -> WhisperError {
        WhisperError::corrupt(
            WHAT,
            self.path,
            format!(
                "truncated: the file ends at byte {} while reading {what}",
                self.len
            ),
        )
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], WhisperError> {
        if self.len - self.pos < N as u64 {
            return Err(self.truncated(what));
        }
        let mut buf = [0u8; N];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| WhisperError::io("read", self.path, e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8, WhisperError> {
        Ok(self.bytes::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, WhisperError> {
        Ok(u16::from_le_bytes(self.bytes(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, WhisperError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    /// A u16-length-prefixed string; the trailing NUL is dropped.
    fn string(&mut self, what: &str) -> Result<String, WhisperError> {
        let len = usize::from(self.u16(what)?);
        if len > MAX_NAME {
            return Err(WhisperError::corrupt(
                WHAT,
                self.path,
                format!("{what} is {len} bytes long"),
            ));
        }
        if self.len - self.pos < len as u64 {
            return Err(self.truncated(what));
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| WhisperError::io("read", self.path, e))?;
        self.pos += len as u64;
        if buf.last() == Some(&0) {
            buf.pop();
        }
        String::from_utf8(buf).map_err(|_| {
            WhisperError::corrupt(WHAT, self.path, format!("{what} is not valid UTF-8"))
        })
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), WhisperError> {
        if self.len - self.pos < n {
            return Err(self.truncated(what));
        }
        let n = i64::try_from(n).map_err(|_| self.truncated(what))?;
        self.file
            .seek_relative(n)
            .map_err(|e| WhisperError::io("read", self.path, e))?;
        self.pos += n as u64;
        Ok(())
    }
}

impl Ct2Model {
    /// Opens `path` and reads its index. The file must exist (callers check first to name
    /// the right fix).
    pub(crate) fn open(path: &Path) -> Result<Self, WhisperError> {
        let file = File::open(path).map_err(|e| WhisperError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| WhisperError::io("read", path, e))?
            .len();
        let mut file = BufReader::with_capacity(1 << 16, file);
        let mut cur = Cursor {
            file: &mut file,
            path,
            pos: 0,
            len,
        };
        let version = cur.u32("the format version")?;
        if version != VERSION {
            return Err(WhisperError::corrupt(
                WHAT,
                path,
                format!(
                    "binary version {version}; only version {VERSION} (CTranslate2 3.x and 4.x) is supported"
                ),
            ));
        }
        let spec = cur.string("the model spec name")?;
        let _revision = cur.u32("the spec revision")?;
        let count = cur.u32("the variable count")?;
        let mut variables = BTreeMap::new();
        for index in 0..count {
            let what = format!("variable {index} of {count}");
            let name = cur.string(&format!("the name of {what}"))?;
            let what = format!("variable `{name}`");
            let rank = usize::from(cur.u8(&format!("the rank of {what}"))?);
            if rank > MAX_RANK {
                return Err(WhisperError::corrupt(
                    WHAT,
                    path,
                    format!("{what} has rank {rank}"),
                ));
            }
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(cur.u32(&format!("the shape of {what}"))? as usize);
            }
            let code = cur.u8(&format!("the data type of {what}"))?;
            let dtype = DType::from_code(code).ok_or_else(|| {
                WhisperError::corrupt(WHAT, path, format!("{what} has unknown data type {code}"))
            })?;
            let nbytes = u64::from(cur.u32(&format!("the size of {what}"))?);
            let expected = dims
                .iter()
                .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
            if expected != Some(nbytes) {
                return Err(WhisperError::corrupt(
                    WHAT,
                    path,
                    format!("{what} has shape {dims:?} of {dtype:?} but {nbytes} bytes of data"),
                ));
            }
            let offset = cur.pos;
            cur.skip(nbytes, &format!("the data of {what}"))?;
            variables.insert(
                name,
                Variable {
                    dims,
                    dtype,
                    offset,
                    nbytes,
                },
            );
        }
        let aliases = cur.u32("the alias count")?;
        for _ in 0..aliases {
            cur.string("an alias name")?;
            cur.string("an alias target")?;
        }
        if cur.pos != len {
            return Err(WhisperError::corrupt(
                WHAT,
                path,
                format!("{} unexpected bytes after the aliases", len - cur.pos),
            ));
        }
        Ok(Ct2Model {
            path: path.to_owned(),
            file,
            spec,
            variables,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The variable `name`, or an error naming it.
    pub(crate) fn var(&self, name: &str) -> Result<&Variable, WhisperError> {
        self.variables.get(name).ok_or_else(|| {
            WhisperError::corrupt(
                WHAT,
                &self.path,
                format!("the variable `{name}` is missing (is this a Whisper model?)"),
            )
        })
    }

    /// An integer scalar (e.g. `encoder/num_heads`), if present.
    pub(crate) fn scalar(&mut self, name: &str) -> Result<Option<i64>, WhisperError> {
        let Some(var) = self.variables.get(name).cloned() else {
            return Ok(None);
        };
        if var.elements() != 1 || var.dtype.is_float() {
            return Err(WhisperError::corrupt(
                WHAT,
                &self.path,
                format!(
                    "`{name}` should be an integer scalar, not {:?} of shape {:?}",
                    var.dtype, var.dims
                ),
            ));
        }
        let bytes = self.read(&var, 0, var.nbytes)?;
        Ok(Some(match var.dtype {
            DType::I8 => i64::from(bytes[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            _ => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        }))
    }

    /// Reads `len` bytes of `var`'s data starting `start` bytes into it.
    pub(crate) fn read(
        &mut self,
        var: &Variable,
        start: u64,
        len: u64,
    ) -> Result<Vec<u8>, WhisperError> {
        debug_assert!(start + len <= var.nbytes);
        let len = usize::try_from(len).map_err(|_| {
            WhisperError::corrupt(WHAT, &self.path, "a tensor larger than the address space")
        })?;
        let mut buf = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(var.offset + start))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| WhisperError::io("read", &self.path, e))?;
        Ok(buf)
    }
}
