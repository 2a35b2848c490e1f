//! [`WhisperStt`]: whisper.cpp behind Switchboard's [`Stt`] trait.

use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use switchboard::voice::audio::{AudioFrame, Resampler};
use switchboard::voice::stt::{
    RecognizeFuture, RecognizeOptions, SpeechData, Stt, SttCapabilities, SttError,
};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::convert::{ConvertReport, convert_ct2_to_ggml};
use crate::{THREADS_ENV, WhisperError, WhisperPaths, ggml};

/// Whisper's input rate.
const SAMPLE_RATE: u32 = 16_000;
/// whisper.cpp ignores clips shorter than this (it returns no text).
const MIN_SAMPLES: usize = SAMPLE_RATE as usize / 10;
/// Encoder frames per second of audio (one per 20 ms).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Frames added to the fitted encoder window.
const AUDIO_CTX_MARGIN: i32 = 64;

/// How [`WhisperStt`] runs the model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WhisperOptions {
    /// Inference threads per recognition (default 1: on shared cores more threads are slower).
    pub threads: usize,
    /// Language used when [`RecognizeOptions::language`] is `None` (default `Some("en")`).
    /// `None` or `"auto"` lets Whisper detect it.
    pub language: Option<String>,
    /// Shrink the encoder window to the clip (`secs / 0.02 + 64` frames, at most 1500)
    /// instead of always encoding 30 s (default `true`; about 8× less CPU for 3 s turns).
    pub fit_audio_ctx: bool,
    /// whisper.cpp inference states kept for reuse between recognitions (default 2). Each
    /// holds its buffers (tens of MB for base); concurrent recognitions beyond this create
    /// and drop extra states.
    pub idle_states: usize,
    /// Use flash attention in whisper.cpp (default `false`).
    pub flash_attn: bool,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        WhisperOptions {
            threads: 1,
            language: Some("en".into()),
            fit_audio_ctx: true,
            idle_states: 2,
            flash_attn: false,
        }
    }
}

impl WhisperOptions {
    /// The defaults, with [`THREADS_ENV`] applied when it holds a positive number.
    pub fn from_env() -> Self {
        let mut options = WhisperOptions::default();
        if let Some(threads) = std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
        {
            options.threads = threads;
        }
        options
    }

    /// Sets [`threads`](Self::threads) (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Sets the default [`language`](Self::language).
    pub fn with_language(mut self, language: Option<&str>) -> Self {
        self.language = language.map(str::to_owned);
        self
    }

    /// Sets [`fit_audio_ctx`](Self::fit_audio_ctx).
    pub fn with_fit_audio_ctx(mut self, fit: bool) -> Self {
        self.fit_audio_ctx = fit;
        self
    }

    /// Sets [`flash_attn`](Self::flash_attn).
    pub fn with_flash_attn(mut self, flash_attn: bool) -> Self {
        self.flash_attn = flash_attn;
        self
    }
}

/// Whisper speech-to-text, loaded once and shared by every session (`Arc<dyn Stt>`).
///
/// [`recognize`](Stt::recognize) takes audio at any rate and channel count, and runs on
/// Tokio's blocking pool (it must be awaited inside a Tokio runtime). Dropping its future
/// stops the inference at the next layer. [`transcribe`](Self::transcribe) is the blocking
/// equivalent for command-line use.
pub struct WhisperStt {
    inner: Arc<Inner>,
    conversion: Option<ConvertReport>,
    load_time: Duration,
}

struct Inner {
    ctx: WhisperContext,
    states: Mutex<Vec<WhisperState>>,
    options: WhisperOptions,
    name: String,
    model: PathBuf,
    eot: i32,
    n_audio_ctx: i32,
}

impl fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhisperStt")
            .field("name", &self.inner.name)
            .field("model", &self.inner.model)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl WhisperStt {
    /// Loads the model at [`WhisperPaths::from_env`] with [`WhisperOptions::from_env`].
    pub fn from_env() -> Result<Arc<Self>, WhisperError> {
        Self::load(&WhisperPaths::from_env()?, WhisperOptions::from_env())
    }

    /// Loads `paths.ggml`, first converting it from `paths.ct2_dir` and `paths.assets_dir`
    /// when it is missing or incomplete. Missing files give an error naming them and the fix
    /// (`scripts/setup.sh`), never a crash. A complete ggml file is reused as it is: delete it
    /// to convert again after changing the CTranslate2 model.
    pub fn load(paths: &WhisperPaths, options: WhisperOptions) -> Result<Arc<Self>, WhisperError> {
        let started = Instant::now();
        let conversion = ensure_ggml(paths)?;
        whisper_rs::install_logging_hooks(); // without a logging feature: silence
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false).flash_attn(options.flash_attn);
        let ctx = WhisperContext::new_with_params(&paths.ggml, params).map_err(|e| {
            WhisperError::Load {
                path: paths.ggml.clone(),
                message: e.to_string(),
            }
        })?;
        let state = ctx.create_state().map_err(|e| WhisperError::Load {
            path: paths.ggml.clone(),
            message: format!("cannot create an inference state: {e}"),
        })?;
        let kind = ctx
            .model_type_readable_str_lossy()
            .map(|s| s.into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let inner = Inner {
            eot: ctx.token_eot(),
            n_audio_ctx: ctx.model_n_audio_ctx(),
            ctx,
            states: Mutex::new(vec![state]),
            options,
            name: format!("whisper-{kind}"),
            model: paths.ggml.clone(),
        };
        let load_time = started.elapsed();
        tracing::info!(
            model = %paths.ggml.display(),
            name = %inner.name,
            load_ms = load_time.as_millis() as u64,
            converted = conversion.is_some(),
            "whisper model loaded"
        );
        Ok(Arc::new(WhisperStt {
            inner: Arc::new(inner),
            conversion,
            load_time,
        }))
    }

    /// Transcribes a clip (any rate and channel count) with the default language. Blocks
    /// the calling thread; in async code use [`Stt::recognize`].
    pub fn transcribe(&self, audio: &AudioFrame) -> Result<String, WhisperError> {
        Ok(self.inner.run(audio, None, None)?.text)
    }

    /// Like [`transcribe`](Self::transcribe), with a language (`None`: the default; `"auto"`:
    /// detect) and the whole transcript (detected language, mean token probability).
    pub fn transcribe_with(
        &self,
        audio: &AudioFrame,
        language: Option<&str>,
    ) -> Result<SpeechData, WhisperError> {
        self.inner.run(audio, language, None)
    }

    /// Like [`transcribe_with`](Self::transcribe_with), stopping with
    /// [`WhisperError::Cancelled`] soon after `cancel` becomes true (whisper.cpp checks it
    /// between graph nodes), e.g. from a Ctrl-C handler.
    pub fn transcribe_cancellable(
        &self,
        audio: &AudioFrame,
        language: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<SpeechData, WhisperError> {
        self.inner.run(audio, language, Some(cancel))
    }

    /// The ggml model in use.
    pub fn model_path(&self) -> &Path {
        &self.inner.model
    }

    /// The conversion this load performed, if the ggml model had to be written.
    pub fn conversion(&self) -> Option<&ConvertReport> {
        self.conversion.as_ref()
    }

    /// How long [`load`](Self::load) took (conversion included).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The options in use.
    pub fn options(&self) -> &WhisperOptions {
        &self.inner.options
    }
}

/// Makes sure `paths.ggml` is a complete ggml model, converting it when it is missing (or
/// incomplete and the CTranslate2 model is there to rebuild it).
fn ensure_ggml(paths: &WhisperPaths) -> Result<Option<ConvertReport>, WhisperError> {
    let ct2 = paths.ct2_model();
    if paths.ggml.is_file() {
        match ggml::inspect(&paths.ggml) {
            Ok(_) => return Ok(None),
            Err(error) if ct2.is_file() => {
                tracing::warn!(%error, "the converted whisper model is damaged; converting it again");
            }
            Err(error) => return Err(error),
        }
    } else if !ct2.is_file() {
        return Err(WhisperError::MissingModel {
            ggml: paths.ggml.clone(),
            ct2,
        });
    }
    tracing::info!(
        from = %ct2.display(),
        to = %paths.ggml.display(),
        "converting the CTranslate2 whisper model to ggml (once)"
    );
    let report = convert_ct2_to_ggml(&ct2, &paths.assets_dir, &paths.ggml)?;
    tracing::info!(
        bytes = report.bytes,
        ms = report.elapsed.as_millis() as u64,
        "converted the whisper model to {}",
        report.output.display()
    );
    Ok(Some(report))
}

impl Inner {
    fn run(
        &self,
        audio: &AudioFrame,
        language: Option<&str>,
        cancel: Option<&AtomicBool>,
    ) -> Result<SpeechData, WhisperError> {
        let language = resolve_language(language.or(self.options.language.as_deref()))?;
        if audio.is_empty() {
            return Err(WhisperError::BadAudio("the audio is empty".into()));
        }
        let pcm = to_pcm_16k(audio)?;
        if pcm.len() < MIN_SAMPLES {
            return Err(WhisperError::BadAudio(format!(
                "the audio is too short ({} ms); Whisper needs at least 100 ms",
                audio.duration().as_millis()
            )));
        }
        let mut state = match self.take_state() {
            Some(state) => state,
            None => self
                .ctx
                .create_state()
                .map_err(|e| WhisperError::Inference(format!("cannot create a state: {e}")))?,
        };

        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.options.threads.max(1)).unwrap_or(1));
        params.set_language(Some(language.as_deref().unwrap_or("auto")));
        params.set_translate(false);
        params.set_no_context(true); // states are shared: never carry text between calls
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if self.options.fit_audio_ctx {
            params.set_audio_ctx(fitted_audio_ctx(pcm.len(), self.n_audio_ctx));
        }
        // No more tokens than speech of this length can hold: hallucinated text on short or
        // unclear clips otherwise runs to the context limit, once per temperature fallback
        // (seen: 13 s for a 0.8 s clip).
        params.set_max_tokens(max_tokens_for(pcm.len()));
        if let Some(flag) = cancel {
            // SAFETY: the callback only reads the AtomicBool, which outlives `state.full`
            // (the only call that uses these parameters).
            unsafe {
                params.set_abort_callback(Some(abort_requested));
                params.set_abort_callback_user_data(flag as *const AtomicBool as *mut c_void);
            }
        }
        if let Err(e) = state.full(params, &pcm) {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(WhisperError::Cancelled);
            }
            return Err(WhisperError::Inference(e.to_string()));
        }

        let mut text = String::new();
        let (mut probability, mut tokens) = (0.0f64, 0usize);
        for segment in state.as_iter() {
            let piece = segment
                .to_str_lossy()
                .map_err(|e| WhisperError::Inference(e.to_string()))?;
            text.push_str(&piece);
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i)
                    && token.token_id() < self.eot
                {
                    probability += f64::from(token.token_probability());
                    tokens += 1;
                }
            }
        }
        let detected = match language {
            Some(language) => language,
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("und")
                .to_owned(),
        };
        self.return_state(state);
        let mut speech = SpeechData::text(trim_repetition(text.trim()));
        speech.language = Some(detected);
        speech.confidence = (tokens > 0).then(|| (probability / tokens as f64) as f32);
        Ok(speech)
    }

    fn take_state(&self) -> Option<WhisperState> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn return_state(&self, state: WhisperState) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if states.len() < self.options.idle_states {
            states.push(state);
        }
    }
}

unsafe extern "C" fn abort_requested(data: *mut c_void) -> bool {
    // SAFETY: `data` is the `&AtomicBool` set in `Inner::run`, alive during `full`.
    unsafe { (*(data as *const AtomicBool)).load(Ordering::Relaxed) }
}

/// The encoder window for a clip of `samples` at 16 kHz: 50 frames per second plus a
/// margin, at most the model's window.
/// Cuts a transcript where it starts over. Whisper's failure mode on short clips is to repeat
/// the utterance ("Yes, that's fine. Yes, that's fine. Yes, that's"); a clip is one
/// utterance, so text whose words repeat all of what came before is cut before the repeat.
fn trim_repetition(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let norm = |w: &str| {
        w.trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
    };
    let normalized: Vec<String> = words.iter().map(|w| norm(w)).collect();
    for start in 1..=words.len() / 2 {
        // The rest starts with the whole prefix again (or as much of it as is left, when the
        // token limit cut the last repeat), and does so at least once in full.
        let prefix = &normalized[..start];
        let mut rest = &normalized[start..];
        let mut full_repeats = 0;
        while !rest.is_empty() {
            let n = rest.len().min(start);
            if rest[..n] != prefix[..n] {
                break;
            }
            if n == start {
                full_repeats += 1;
            }
            rest = &rest[n..];
        }
        if rest.is_empty() && full_repeats > 0 {
            return words[..start].join(" ");
        }
    }
    text.to_owned()
}

/// A generous bound on the tokens of `samples` of 16 kHz speech: about 6 per second (fast
/// speech is ~3 words per second) plus a margin for punctuation.
fn max_tokens_for(samples: usize) -> i32 {
    let seconds = samples as f64 / 16_000.0;
    (seconds * 6.0 + 16.0).min(224.0) as i32
}

fn fitted_audio_ctx(samples: usize, max: i32) -> i32 {
    let frames = (samples as f64 / f64::from(SAMPLE_RATE) * FRAMES_PER_SECOND) as i64
        + i64::from(AUDIO_CTX_MARGIN);
    frames.max(i64::from(MIN_AUDIO_CTX)).min(i64::from(max)) as i32
}

/// Whisper decodes short contexts poorly: below about 8 s it repeats the utterance ("Yes,
/// that's fine. Yes, that's fine. …") or invents words (measured on Piper speech, 1-3 s
/// clips, base model: clean at 400 frames and up, repeating at 250 and below). So the
/// context is fitted to the clip but never below 8 s; still ~4x cheaper than the full 30 s.
const MIN_AUDIO_CTX: i32 = 400;

/// `None` to detect the language, else Whisper's code for `language` (BCP-47 tags are cut to
/// their primary subtag: `en-US` → `en`).
fn resolve_language(language: Option<&str>) -> Result<Option<String>, WhisperError> {
    whisper_rs::install_logging_hooks(); // whisper_lang_id logs unknown codes to stderr
    let Some(tag) = language.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase();
    if primary == "auto" {
        return Ok(None);
    }
    match whisper_rs::get_lang_id(&primary) {
        Some(id) => Ok(Some(
            whisper_rs::get_lang_str(id).unwrap_or(&primary).to_owned(),
        )),
        None => Err(WhisperError::UnknownLanguage(tag.to_owned())),
    }
}

/// Mono `f32` at 16 kHz.
fn to_pcm_16k(audio: &AudioFrame) -> Result<Vec<f32>, WhisperError> {
    let bad = |e: switchboard::voice::audio::AudioError| WhisperError::BadAudio(e.to_string());
    let mono = audio.to_mono();
    let mut input = Vec::with_capacity(mono.samples_per_channel());
    mono.to_f32_into(&mut input);
    if mono.sample_rate() == SAMPLE_RATE {
        return Ok(input);
    }
    let mut resampler = Resampler::new(mono.sample_rate(), SAMPLE_RATE, 1).map_err(bad)?;
    let expected =
        (input.len() as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(mono.sample_rate()));
    let mut out = Vec::with_capacity(expected as usize + 1);
    resampler.process_f32(&input, &mut out).map_err(bad)?;
    resampler.flush_f32(&mut out).map_err(bad)?;
    Ok(out)
}

impl From<WhisperError> for SttError {
    fn from(error: WhisperError) -> Self {
        match error {
            WhisperError::BadAudio(message) => SttError::BadAudio(message),
            WhisperError::UnknownLanguage(_) => SttError::Unsupported(error.to_string()),
            error => SttError::Model(error.to_string()),
        }
    }
}

/// Sets the flag when dropped, unless disarmed: a dropped recognition future stops its
/// inference.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

impl Stt for WhisperStt {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capabilities(&self) -> SttCapabilities {
        SttCapabilities {
            streaming: false,
            interim_results: false,
        }
    }

    fn recognize(&self, audio: AudioFrame, options: &RecognizeOptions) -> RecognizeFuture {
        let inner = Arc::clone(&self.inner);
        let language = options.language.clone();
        Box::pin(async move {
            if audio.is_empty() {
                return Err(SttError::BadAudio("the audio is empty".into()));
            }
            let handle = tokio::runtime::Handle::try_current().map_err(|_| {
                SttError::Model("WhisperStt::recognize must run inside a Tokio runtime".into())
            })?;
            let cancel = Arc::new(AtomicBool::new(false));
            let mut guard = CancelOnDrop(Some(Arc::clone(&cancel)));
            let task = handle
                .spawn_blocking(move || inner.run(&audio, language.as_deref(), Some(&cancel)));
            let result = task.await;
            guard.0 = None; // finished: nothing to cancel
            match result {
                Ok(result) => result.map_err(SttError::from),
                Err(error) => Err(SttError::Model(format!(
                    "the whisper inference task failed: {error}"
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_utterances_are_cut() {
        assert_eq!(
            trim_repetition("Yes, that's fine. Yes, that's fine. Yes, that's"),
            "Yes, that's fine."
        );
        assert_eq!(
            trim_repetition("My name is Jane Doe."),
            "My name is Jane Doe."
        );
        assert_eq!(
            trim_repetition("I said no, I said no twice"),
            "I said no, I said no twice"
        );
    }

    #[test]
    fn token_bound_follows_the_clip_length() {
        assert_eq!(max_tokens_for(16_000), 22);
        assert_eq!(max_tokens_for(16_000 * 10), 76);
        assert_eq!(max_tokens_for(16_000 * 60), 224);
    }

    #[test]
    fn audio_ctx_fits_the_clip() {
        assert_eq!(
            fitted_audio_ctx(16_000, 1500),
            MIN_AUDIO_CTX,
            "at least 8 s"
        );
        assert_eq!(fitted_audio_ctx(16_000 * 12, 1500), 600 + 64);
        assert_eq!(fitted_audio_ctx(16_000 * 29, 1500), 1500);
        assert_eq!(fitted_audio_ctx(16_000 * 60, 1500), 1500);
        assert_eq!(fitted_audio_ctx(16_000, 100), 100);
    }

    #[test]
    fn languages_resolve_to_whisper_codes() {
        assert_eq!(resolve_language(Some("en")).unwrap().as_deref(), Some("en"));
        assert_eq!(
            resolve_language(Some("en-US")).unwrap().as_deref(),
            Some("en")
        );
        assert_eq!(resolve_language(Some("DE")).unwrap().as_deref(), Some("de"));
        assert_eq!(resolve_language(Some("auto")).unwrap(), None);
        assert_eq!(resolve_language(None).unwrap(), None);
        assert!(matches!(
            resolve_language(Some("xx-YY")),
            Err(WhisperError::UnknownLanguage(l)) if l == "xx-YY"
        ));
    }

    #[test]
    fn audio_is_resampled_to_16k_mono() {
        let stereo = AudioFrame::new(vec![1000i16; 48_000 * 2], 48_000, 2).unwrap();
        let pcm = to_pcm_16k(&stereo).unwrap();
        assert_eq!(pcm.len(), 16_000);
        let mid = pcm[8_000];
        assert!((mid - 1000.0 / 32768.0).abs() < 1e-3, "{mid}");
    }
}
