//! The `espeak-ng` program: Piper's phonemiser, and a TTS engine of its own ([`EspeakTts`]).
//!
//! espeak-ng is GPL-3.0, so it is only ever run as a subprocess, never linked.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard::voice::audio::{OnTruncated, decode_wav};
use switchboard::voice::tts::{Tts, TtsError, TtsStream};

use crate::error::{FIX, PiperError};
use crate::split::split_text;
use crate::worker::{frame_len, send_frames, stream_from_worker};

/// The program run by default (found on `PATH`).
pub const ESPEAK_PROGRAM: &str = "espeak-ng";
/// The Debian package that installs it.
pub const DEBIAN_PACKAGE: &str = "espeak-ng";

/// espeak-ng's output rate for its own voices.
const ESPEAK_RATE: u32 = 22_050;

/// An espeak-ng program and voice.
#[derive(Debug, Clone)]
pub(crate) struct Espeak {
    pub program: PathBuf,
    pub voice: String,
}

/// A running espeak-ng process; killed if dropped before [`Pending::finish`].
pub(crate) struct Pending {
    child: Option<Child>,
    program: PathBuf,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Pending {
    /// Waits for the process; its stdout, or an error with what it printed.
    pub fn finish(mut self) -> Result<Vec<u8>, TtsError> {
        let Some(child) = self.child.take() else {
            return Err(TtsError::Model("espeak-ng was already waited for".into()));
        };
        let output = child
            .wait_with_output()
            .map_err(|e| TtsError::Model(format!("espeak-ng failed: {e}")))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            let said = if said.trim().is_empty() {
                String::from_utf8_lossy(&output.stdout)
            } else {
                said
            };
            return Err(TtsError::Model(format!(
                "`{}` exited with {}: {}",
                self.program.display(),
                output.status,
                said.trim()
            )));
        }
        Ok(output.stdout)
    }
}

/// The message for a program that cannot be started.
pub(crate) fn spawn_failure(program: &Path, error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::NotFound => format!(
            "`{}` not found: install the Debian package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}) or {FIX}",
            program.display()
        ),
        _ => format!(
            "cannot run `{}` ({error}): check the Debian package `{DEBIAN_PACKAGE}`",
            program.display()
        ),
    }
}

impl Espeak {
    fn spawn(&self, args: &[&str], text: &str) -> Result<Pending, TtsError> {
        let child = Command::new(&self.program)
            .args(args)
            .args(["-v", &self.voice, "--"])
            .arg(text)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TtsError::Model(spawn_failure(&self.program, &e)))?;
        Ok(Pending {
            child: Some(child),
            program: self.program.clone(),
        })
    }

    /// Starts phonemising `text` (IPA, one line per clause); see [`Self::assemble`].
    pub fn start_phonemes(&self, text: &str) -> Result<Pending, TtsError> {
        self.spawn(&["-q", "--ipa"], text)
    }

    /// Starts synthesising `text` to a WAV on stdout.
    fn start_wav(&self, text: &str, extra: &[String]) -> Result<Pending, TtsError> {
        let mut args = vec!["--stdout"];
        args.extend(extra.iter().map(String::as_str));
        self.spawn(&args, text)
    }

    /// Phonemises `text` and waits for the result.
    pub fn phonemes(&self, text: &str) -> Result<String, TtsError> {
        let out = self.start_phonemes(text)?.finish()?;
        Ok(assemble_phonemes(text, &String::from_utf8_lossy(&out)))
    }

    /// Checks that the program runs and knows the voice.
    pub fn check(&self) -> Result<(), PiperError> {
        match self.start_phonemes("a").and_then(Pending::finish) {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = match e {
                    TtsError::Model(m) => m,
                    other => other.to_string(),
                };
                let runs = Command::new(&self.program)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                match runs {
                    Ok(s) if s.success() => Err(PiperError::Espeak {
                        voice: self.voice.clone(),
                        message,
                    }),
                    Ok(s) => Err(PiperError::EspeakMissing {
                        program: self.program.clone(),
                        message: format!("`--version` exited with {s}"),
                    }),
                    Err(e) => Err(PiperError::EspeakMissing {
                        program: self.program.clone(),
                        message: e.to_string(),
                    }),
                }
            }
        }
    }
}

/// Turns espeak-ng's IPA output (one line per clause, punctuation dropped) into Piper's
/// phoneme string: the clauses joined with the punctuation that ended them in `text`
/// (`, ; : . ! ?`), as Piper's own phonemiser keeps it. When the clause count of `text`
/// does not match espeak's (abbreviations, symbols read aloud), the clauses are joined with
/// `, ` and the sentence's final mark (default `.`) is appended.
pub(crate) fn assemble_phonemes(text: &str, ipa: &str) -> String {
    let lines: Vec<String> = ipa
        .lines()
        .map(strip_language_flags)
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let marks = clause_marks(text);
    let mut out = String::new();
    if marks.len() == lines.len() {
        for (i, (line, mark)) in lines.iter().zip(&marks).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(line);
            match mark {
                Some(mark) => out.push(*mark),
                None if i + 1 == lines.len() => out.push('.'),
                None => out.push(','),
            }
        }
    } else {
        out = lines.join(", ");
        out.push(final_mark(text));
    }
    out
}

/// Removes espeak's language-switch flags such as `(fr)` or `(en-us)`.
fn strip_language_flags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-') =>
            {
                rest = &after[close + 1..];
            }
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Punctuation that may follow a clause mark without ending the run (closing quotes,
/// brackets, repeated marks).
fn is_trailing(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ',' | ';' | ':' | '…' | '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»'
    )
}

/// The mark ending each clause of `text` that has a letter or digit: what espeak-ng breaks
/// its output at (a clause mark followed by whitespace or the end), normalised to Piper's
/// symbols; `None` for a last clause without a mark.
fn clause_marks(text: &str) -> Vec<Option<char>> {
    let chars: Vec<char> = text.chars().collect();
    let mut marks = Vec::new();
    let mut has_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() {
            has_word = true;
        }
        let mark = match c {
            ',' | ';' | ':' | '.' | '!' | '?' => Some(c),
            '…' => Some('.'),
            '—' | '–' => Some(','),
            _ => None,
        };
        if let Some(mark) = mark {
            let mut j = i + 1;
            while j < chars.len() && is_trailing(chars[j]) {
                j += 1;
            }
            if j == chars.len() || chars[j].is_whitespace() {
                if has_word {
                    marks.push(Some(mark));
                    has_word = false;
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if has_word {
        marks.push(None);
    }
    marks
}

/// The mark that ends `text` (`.` if it ends without one).
fn final_mark(text: &str) -> char {
    let trimmed = text.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
    });
    match trimmed.chars().last() {
        Some(c @ ('.' | '!' | '?' | ',' | ';' | ':')) => c,
        Some('…') => '.',
        _ => '.',
    }
}

/// Settings of [`EspeakTts`].
#[derive(Debug, Clone, PartialEq)]
pub struct EspeakOptions {
    /// The program (default `espeak-ng` on `PATH`).
    pub program: PathBuf,
    /// The espeak-ng voice (default `en-us`).
    pub voice: String,
    /// Speaking rate in words per minute (espeak's default 175).
    pub words_per_minute: Option<u32>,
    /// Pitch, 0 to 99 (espeak's default 50).
    pub pitch: Option<u8>,
    /// Duration of the streamed frames (default 100 ms).
    pub frame_duration: Duration,
    /// Maximum characters of the first piece synthesised (default 100).
    pub first_max_chars: usize,
    /// Maximum characters of the other pieces (default 300).
    pub max_chars: usize,
}

impl Default for EspeakOptions {
    fn default() -> Self {
        EspeakOptions {
            program: PathBuf::from(ESPEAK_PROGRAM),
            voice: "en-us".into(),
            words_per_minute: None,
            pitch: None,
            frame_duration: Duration::from_millis(100),
            first_max_chars: 100,
            max_chars: 300,
        }
    }
}

/// Text-to-speech with the `espeak-ng` program alone: robotic, but the first audio comes in
/// a few tens of milliseconds and it needs no model files. Mono, 22,050 Hz.
///
/// Each sentence is one `espeak-ng -v <voice> --stdout` process whose WAV is decoded and
/// streamed in frames.
///
/// ```no_run
/// use futures::StreamExt;
/// use switchboard::voice::tts::Tts;
/// use switchboard_piper::EspeakTts;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let tts = EspeakTts::new();
/// let mut audio = tts.synthesize("Hello there. This is espeak.");
/// while let Some(frame) = audio.next().await {
///     assert_eq!(frame?.sample_rate(), 22_050);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EspeakTts {
    options: EspeakOptions,
    name: String,
}

impl Default for EspeakTts {
    fn default() -> Self {
        Self::new()
    }
}

impl EspeakTts {
    /// `espeak-ng` with the `en-us` voice.
    pub fn new() -> Self {
        Self::with_options(EspeakOptions::default())
    }

    /// With other settings.
    pub fn with_options(options: EspeakOptions) -> Self {
        EspeakTts {
            name: format!("espeak-{}", options.voice),
            options,
        }
    }

    /// The settings.
    pub fn options(&self) -> &EspeakOptions {
        &self.options
    }

    /// Checks that the program runs and knows the voice (a short synthesis).
    pub fn check(&self) -> Result<(), PiperError> {
        self.espeak().check()
    }

    fn espeak(&self) -> Espeak {
        Espeak {
            program: self.options.program.clone(),
            voice: self.options.voice.clone(),
        }
    }

    fn extra_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(wpm) = self.options.words_per_minute {
            args.extend(["-s".to_string(), wpm.to_string()]);
        }
        if let Some(pitch) = self.options.pitch {
            args.extend(["-p".to_string(), pitch.min(99).to_string()]);
        }
        args
    }
}

impl Tts for EspeakTts {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        ESPEAK_RATE
    }

    fn synthesize(&self, text: &str) -> TtsStream {
        let pieces = split_text(text, self.options.first_max_chars, self.options.max_chars);
        if pieces.is_empty() {
            return Box::pin(futures::stream::empty());
        }
        let espeak = self.espeak();
        let extra = self.extra_args();
        let frame = frame_len(self.options.frame_duration, ESPEAK_RATE);
        stream_from_worker(move |tx| {
            for piece in &pieces {
                if tx.is_closed() {
                    return;
                }
                let wav = espeak
                    .start_wav(piece, &extra)
                    .and_then(Pending::finish)
                    .and_then(|bytes| {
                        decode_wav(bytes.as_slice(), "espeak-ng output", OnTruncated::Keep)
                            .map_err(TtsError::from)
                    });
                let audio = match wav {
                    Ok(wav) if wav.frame.sample_rate() != ESPEAK_RATE => {
                        Err(TtsError::BadAudio(format!(
                            "espeak-ng produced {} Hz audio, expected {ESPEAK_RATE} Hz (MBROLA voices are not supported)",
                            wav.frame.sample_rate()
                        )))
                    }
                    Ok(wav) => Ok(wav.frame.to_mono()),
                    Err(e) => Err(e),
                };
                match audio {
                    Ok(audio) => {
                        if !send_frames(tx, audio.data(), ESPEAK_RATE, frame) {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.unbounded_send(Err(e));
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_punctuation_is_restored() {
        let text = "Sure, I can help with that.";
        let ipa = "ʃˈʊɹ\naɪ kæn hˈɛlp wɪð ðˈæt\n";
        assert_eq!(assemble_phonemes(text, ipa), "ʃˈʊɹ, aɪ kæn hˈɛlp wɪð ðˈæt.");
        assert_eq!(
            assemble_phonemes("\"Stop!\" he said; why?!", "stˈɑːp\nhiː sˈɛd\nwˈaɪ\n"),
            "stˈɑːp! hiː sˈɛd; wˈaɪ?"
        );
        assert_eq!(
            assemble_phonemes("Hello — world", "həlˈoʊ\nwˈɜːld\n"),
            "həlˈoʊ, wˈɜːld."
        );
        // 3.50 and 10:30 do not end clauses.
        assert_eq!(clause_marks("It costs 3.50 at 10:30 now"), [None]);
    }

    #[test]
    fn a_clause_count_mismatch_falls_back_to_commas() {
        // espeak reads "e.g." as one word; the text seems to have three clauses.
        let text = "It costs 3.50 dollars, e.g. cheap!";
        let ipa = "ɪt kˈɔsts θɹˈiː dˈɑːlɚz\nfˌɔːɹɛɡzˈæmpəl tʃˈiːp\n";
        assert_eq!(
            assemble_phonemes(text, ipa),
            "ɪt kˈɔsts θɹˈiː dˈɑːlɚz, fˌɔːɹɛɡzˈæmpəl tʃˈiːp!"
        );
        assert_eq!(assemble_phonemes("anything", ""), "");
    }

    #[test]
    fn language_flags_are_removed() {
        assert_eq!(strip_language_flags("(fr)bɔ̃ʒuʁ(en) hi"), "bɔ̃ʒuʁ hi");
        assert_eq!(strip_language_flags("a (b c) d("), "a (b c) d(");
    }

    #[test]
    fn a_missing_program_names_the_debian_package() {
        let espeak = Espeak {
            program: PathBuf::from("/nonexistent/espeak-ng"),
            voice: "en-us".into(),
        };
        let Err(TtsError::Model(message)) = espeak.phonemes("hello") else {
            panic!("expected a model error");
        };
        assert!(message.contains("Debian package `espeak-ng`"), "{message}");
        let err = espeak.check().unwrap_err();
        assert!(matches!(err, PiperError::EspeakMissing { .. }), "{err}");
        assert!(
            err.to_string().contains("apt-get install espeak-ng"),
            "{err}"
        );
    }
}
