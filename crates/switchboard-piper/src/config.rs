//! The Piper voice config (`*.onnx.json`) and the phoneme-to-id conversion.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;
use switchboard::voice::audio::MAX_SAMPLE_RATE;

use crate::error::PiperError;

/// Beginning of an utterance.
const BOS: char = '^';
/// End of an utterance.
const EOS: char = '$';
/// Padding written after every phoneme.
const PAD: char = '_';

/// A Piper voice config: the parts this crate uses (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PiperConfig {
    /// The output audio.
    pub audio: AudioConfig,
    /// The phonemiser settings.
    pub espeak: EspeakConfig,
    /// The model's default inference scales.
    #[serde(default)]
    pub inference: InferenceScales,
    /// `espeak` for every voice this crate can run (`text` voices are not supported).
    #[serde(default)]
    pub phoneme_type: Option<String>,
    /// Phonemes replaced by other phonemes before the id lookup (usually empty).
    #[serde(default)]
    pub phoneme_map: HashMap<String, Vec<String>>,
    /// The id (or ids) of each phoneme, one Unicode code point per key.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// Number of speakers (1 for single-speaker voices).
    #[serde(default)]
    pub num_speakers: u32,
    /// Speaker names of multi-speaker voices.
    #[serde(default)]
    pub speaker_id_map: HashMap<String, i64>,
}

/// `audio` in the voice config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AudioConfig {
    /// The sample rate of the model's output (22,050 Hz for `medium` voices).
    pub sample_rate: u32,
    /// `x_low`, `low`, `medium` or `high`.
    #[serde(default)]
    pub quality: Option<String>,
}

/// `espeak` in the voice config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EspeakConfig {
    /// The espeak-ng voice that phonemises the text, e.g. `en-us`.
    pub voice: String,
}

/// The VITS inference scales (`inference` in the voice config), passed to the model as its
/// `scales` input.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default)]
pub struct InferenceScales {
    /// Noise added to the audio (variation in the voice; Piper's default 0.667).
    pub noise_scale: f32,
    /// Phoneme duration factor: above 1 speaks slower, below 1 faster (default 1).
    pub length_scale: f32,
    /// Noise added to the phoneme durations (variation in rhythm; default 0.8).
    pub noise_w: f32,
}

impl Default for InferenceScales {
    fn default() -> Self {
        InferenceScales {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

impl InferenceScales {
    /// `[noise_scale, length_scale, noise_w]`, the model's `scales` input.
    pub fn to_array(self) -> [f32; 3] {
        [self.noise_scale, self.length_scale, self.noise_w]
    }
}

impl PiperConfig {
    /// Reads and checks a voice config.
    pub fn load(path: &Path) -> Result<Self, PiperError> {
        let text = std::fs::read_to_string(path).map_err(|source| PiperError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| PiperError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and checks a voice config from JSON text.
    pub fn parse(json: &str) -> Result<Self, String> {
        let config: PiperConfig =
            serde_json::from_str(json).map_err(|e| format!("not a Piper voice config: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(kind) = &self.phoneme_type
            && kind != "espeak"
        {
            return Err(format!(
                "phoneme_type `{kind}` is not supported (only `espeak` voices)"
            ));
        }
        if self.audio.sample_rate == 0 || self.audio.sample_rate > MAX_SAMPLE_RATE {
            return Err(format!(
                "audio.sample_rate {} is out of range",
                self.audio.sample_rate
            ));
        }
        if self.espeak.voice.trim().is_empty() {
            return Err("espeak.voice is empty".into());
        }
        for symbol in [BOS, EOS, PAD] {
            match self
                .phoneme_id_map
                .get(symbol.encode_utf8(&mut [0; 4]) as &str)
            {
                Some(ids) if !ids.is_empty() => {}
                _ => return Err(format!("phoneme_id_map has no id for `{symbol}`")),
            }
        }
        let scales = self.inference.to_array();
        if scales.iter().any(|s| !s.is_finite() || *s < 0.0) || self.inference.length_scale <= 0.0 {
            return Err(format!("invalid inference scales {scales:?}"));
        }
        Ok(())
    }

    /// A lookup table for [`PhonemeIds::encode`].
    pub(crate) fn phoneme_ids(&self) -> PhonemeIds {
        let single = |key: &str| {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        let mut ids = HashMap::new();
        for (key, value) in &self.phoneme_id_map {
            match single(key) {
                Some(c) => {
                    ids.insert(c, value.clone());
                }
                None => tracing::debug!(key, "ignoring a multi-character phoneme_id_map key"),
            }
        }
        let mut map = HashMap::new();
        for (key, value) in &self.phoneme_map {
            if let Some(c) = single(key) {
                map.insert(c, value.iter().filter_map(|v| single(v)).collect());
            }
        }
        let get = |c: char| ids.get(&c).cloned().unwrap_or_default();
        PhonemeIds {
            bos: get(BOS),
            eos: get(EOS),
            pad: get(PAD),
            ids,
            map,
        }
    }
}

/// Phoneme string → model ids, as Piper does it: `^`, `_`, then each phoneme's ids followed
/// by `_`, then `$`.
#[derive(Debug, Clone)]
pub(crate) struct PhonemeIds {
    ids: HashMap<char, Vec<i64>>,
    map: HashMap<char, Vec<char>>,
    bos: Vec<i64>,
    eos: Vec<i64>,
    pad: Vec<i64>,
}

/// The ids of one utterance and the phonemes that had no id (skipped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded {
    pub ids: Vec<i64>,
    /// Number of phonemes that were encoded (0: nothing to say).
    pub phonemes: usize,
    pub unknown: BTreeSet<char>,
}

impl PhonemeIds {
    pub(crate) fn encode(&self, phonemes: &str) -> Encoded {
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 4);
        ids.extend_from_slice(&self.bos);
        ids.extend_from_slice(&self.pad);
        let mut count = 0;
        let mut unknown = BTreeSet::new();
        let mut push = |c: char, ids: &mut Vec<i64>| match self.ids.get(&c) {
            Some(id) => {
                ids.extend_from_slice(id);
                ids.extend_from_slice(&self.pad);
                count += 1;
            }
            None => {
                unknown.insert(c);
            }
        };
        for c in phonemes.chars() {
            match self.map.get(&c) {
                Some(mapped) => mapped.iter().for_each(|&m| push(m, &mut ids)),
                None => push(c, &mut ids),
            }
        }
        ids.extend_from_slice(&self.eos);
        Encoded {
            ids,
            phonemes: count,
            unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"{
        "audio": {"sample_rate": 22050, "quality": "medium"},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {"x": ["a", "b"]},
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], "a": [14], "b": [15], "ˈ": [120]},
        "num_speakers": 1
    }"#;

    #[test]
    fn ids_follow_pipers_layout() {
        let config = PiperConfig::parse(MINI).unwrap();
        assert_eq!(config.audio.sample_rate, 22_050);
        assert_eq!(config.inference.to_array(), [0.667, 1.0, 0.8]);
        let encoded = config.phoneme_ids().encode("ˈa b");
        assert_eq!(encoded.ids, [1, 0, 120, 0, 14, 0, 3, 0, 15, 0, 2]);
        assert_eq!(encoded.phonemes, 4);
        assert!(encoded.unknown.is_empty());
    }

    #[test]
    fn unknown_phonemes_are_skipped_and_reported() {
        let ids = PiperConfig::parse(MINI).unwrap().phoneme_ids();
        let encoded = ids.encode("a☃b");
        assert_eq!(encoded.ids, [1, 0, 14, 0, 15, 0, 2]);
        assert_eq!(encoded.unknown.into_iter().collect::<Vec<_>>(), ['☃']);
        // phoneme_map replaces before the lookup.
        assert_eq!(ids.encode("x").ids, [1, 0, 14, 0, 15, 0, 2]);
        // Nothing known: nothing to say.
        assert_eq!(ids.encode("☃").phonemes, 0);
    }

    #[test]
    fn bad_configs_are_rejected_with_a_reason() {
        let err = PiperConfig::parse("{ not json").unwrap_err();
        assert!(err.contains("not a Piper voice config"), "{err}");
        let err = PiperConfig::parse(r#"{"audio": {"sample_rate": 22050}}"#).unwrap_err();
        assert!(err.contains("espeak"), "{err}");
        let no_pad = MINI.replace(r#""_": [0], "#, "");
        let err = PiperConfig::parse(&no_pad).unwrap_err();
        assert!(err.contains("no id for `_`"), "{err}");
        let text = MINI.replace(r#""phoneme_type": "espeak""#, r#""phoneme_type": "text""#);
        assert!(PiperConfig::parse(&text).unwrap_err().contains("text"));
        let zero = MINI.replace("22050", "0");
        assert!(
            PiperConfig::parse(&zero)
                .unwrap_err()
                .contains("sample_rate")
        );
    }
}
