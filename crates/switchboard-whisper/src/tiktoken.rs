//! Reading tiktoken vocabularies (`<base64 token> <rank>` per line), as shipped by
//! openai-whisper (`multilingual.tiktoken`, `gpt2.tiktoken`).

use std::path::Path;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::WhisperError;

const WHAT: &str = "tiktoken vocabulary";

/// Accepts tokens with or without `=` padding (openai-whisper reads the files with Python's
/// lenient `base64.b64decode`; `multilingual.tiktoken` even has a lone `=`, the empty token).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The token byte strings in rank order (rank = index).
pub(crate) fn read_tiktoken(path: &Path) -> Result<Vec<Vec<u8>>, WhisperError> {
    let text = std::fs::read(path).map_err(|e| WhisperError::io("read", path, e))?;
    parse_tiktoken(&text).map_err(|m| WhisperError::corrupt(WHAT, path, m))
}

pub(crate) fn parse_tiktoken(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut tokens = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line_no = index + 1;
        let line = std::str::from_utf8(line).map_err(|_| format!("line {line_no} is not text"))?;
        let mut fields = line.split_ascii_whitespace();
        let (Some(token), Some(rank), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("line {line_no} is not `<base64 token> <rank>`"));
        };
        let rank: usize = rank
            .parse()
            .map_err(|_| format!("line {line_no}: bad rank `{rank}`"))?;
        if rank != tokens.len() {
            return Err(format!(
                "line {line_no}: rank {rank} out of order (expected {})",
                tokens.len()
            ));
        }
        let bytes = LENIENT
            .decode(token.trim_end_matches('='))
            .map_err(|e| format!("line {line_no}: bad base64 `{token}`: {e}"))?;
        tokens.push(bytes);
    }
    if tokens.is_empty() {
        return Err("it has no tokens".into());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_tokens_in_rank_order() {
        let tokens = parse_tiktoken(b"IQ== 0\nIGhlbGxv 1\r\n= 2\n\nw6k 3\n").unwrap();
        assert_eq!(
            tokens,
            [
                b"!".to_vec(),
                b" hello".to_vec(),
                Vec::new(),
                "\u{e9}".as_bytes().to_vec()
            ]
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(
            parse_tiktoken(b"IQ== 1\n")
                .unwrap_err()
                .contains("out of order")
        );
        assert!(parse_tiktoken(b"IQ==\n").unwrap_err().contains("line 1"));
        assert!(
            parse_tiktoken(b"IQ== 0\n*** 1\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(parse_tiktoken(b"\n\n").unwrap_err().contains("no tokens"));
    }
}
