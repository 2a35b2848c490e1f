//! Reading 2-D float arrays from NumPy `.npz` archives (a zip of `.npy` files), enough for
//! openai-whisper's `mel_filters.npz`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::WhisperError;

const WHAT: &str = "NumPy .npz archive";
/// Largest array member accepted (the mel filters are 64 to 103 kB).
const MAX_MEMBER: u64 = 64 << 20;

/// A row-major 2-D `f32` array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Reads the array `key` (the member `key.npy`) from the archive at `path`.
pub(crate) fn read_npz_matrix(path: &Path, key: &str) -> Result<Matrix, WhisperError> {
    let file = File::open(path).map_err(|e| WhisperError::io("open", path, e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| WhisperError::corrupt(WHAT, path, e.to_string()))?;
    let member = format!("{key}.npy");
    let mut entry = archive.by_name(&member).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            WhisperError::corrupt(WHAT, path, format!("it has no array `{key}`"))
        }
        e => WhisperError::corrupt(WHAT, path, format!("{member}: {e}")),
    })?;
    if entry.size() > MAX_MEMBER {
        return Err(WhisperError::corrupt(
            WHAT,
            path,
            format!("{member} is {} bytes", entry.size()),
        ));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| WhisperError::corrupt(WHAT, path, format!("{member}: {e}")))?;
    parse_npy_matrix(&bytes)
        .map_err(|m| WhisperError::corrupt(WHAT, path, format!("{member}: {m}")))
}

/// Parses a version 1-3 `.npy` file holding a 2-D little-endian `f4` or `f8` array.
pub(crate) fn parse_npy_matrix(bytes: &[u8]) -> Result<Matrix, String> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or("not a .npy file (bad magic)")?;
    let (&major, rest) = rest.split_first().ok_or("truncated header")?;
    let (_minor, rest) = rest.split_first().ok_or("truncated header")?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_at_checked(2).ok_or("truncated header")?;
            (usize::from(u16::from_le_bytes([len[0], len[1]])), rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_at_checked(4).ok_or("truncated header")?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
            (len as usize, rest)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let (header, data) = rest
        .split_at_checked(header_len)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let shape = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        other => return Err(format!("dtype {other} (expected <f4 or <f8)")),
    };
    let fortran = match fortran {
        "True" => true,
        "False" => false,
        other => return Err(format!("fortran_order is {other}")),
    };
    let dims: Vec<usize> = shape
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| format!("bad shape {shape}")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!("shape {shape} is not 2-D"));
    };
    let count = rows.checked_mul(cols).ok_or("shape overflows")?;
    if data.len() != count * width {
        return Err(format!(
            "shape {shape} needs {} bytes of data, the file has {}",
            count * width,
            data.len()
        ));
    }
    let values: Vec<f32> = if width == 4 {
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect()
    };
    let data = if fortran {
        // Column-major on disk: element (r, c) is at c * rows + r.
        let mut out = vec![0.0; count];
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = values[c * rows + r];
            }
        }
        out
    } else {
        values
    };
    Ok(Matrix { rows, cols, data })
}

/// The raw text of `key`'s value in a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (80, 201), }`.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_c_and_fortran_order() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let c = parse_npy_matrix(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
            &data,
        ))
        .unwrap();
        assert_eq!((c.rows, c.cols), (2, 3));
        assert_eq!(c.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let f = parse_npy_matrix(&npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n",
            &data,
        ))
        .unwrap();
        assert_eq!(f.data, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn parses_f8() {
        let data: Vec<u8> = [0.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let m = parse_npy_matrix(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }\n",
            &data,
        ))
        .unwrap();
        assert_eq!(m.data, [0.5, -2.0]);
    }

    #[test]
    fn rejects_bad_input() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
        assert!(parse_npy_matrix(b"\x93NUMPX\x01\x00").is_err());
        assert!(
            parse_npy_matrix(&npy(header, &[0; 20]))
                .unwrap_err()
                .contains("24 bytes")
        );
        let i4 = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n";
        assert!(
            parse_npy_matrix(&npy(i4, &[0; 24]))
                .unwrap_err()
                .contains("<i4")
        );
        let one_d = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n";
        assert!(
            parse_npy_matrix(&npy(one_d, &[0; 24]))
                .unwrap_err()
                .contains("2-D")
        );
        assert!(parse_npy_matrix(&npy(header, &[])[..12]).is_err());
    }
}
