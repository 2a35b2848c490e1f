//! The engine: `libneedle3.so` loaded once per process, every call serialised through one lock.

use std::ffi::{CStr, CString, c_char, c_int};
use std::io::Read;
use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use libloading::Library;
use sha2::{Digest, Sha256};

use crate::{LIBRARY_SHA256, NeedleError, NeedlePaths, WEIGHTS_SHA256};

type LoadFn = unsafe extern "C" fn(*const c_char, u64) -> c_int;
type InitFn = unsafe extern "C" fn(*const c_char, *const c_char, *const c_char) -> c_int;
type CompleteFn = unsafe extern "C" fn(*const c_char, c_int, *mut c_char, c_int) -> c_int;
type ResetFn = unsafe extern "C" fn();
type LastErrorFn = unsafe extern "C" fn() -> *const c_char;

/// The engine's functions, copied out of the library (which [`Needle`] keeps loaded).
struct Api {
    load: LoadFn,
    init: InitFn,
    complete: CompleteFn,
    reset: ResetFn,
    last_error: LastErrorFn,
}

/// What the lock guards: the engine's global state as we last set it.
struct State {
    /// The `(system, tools_json)` of the last successful `needle_init`.
    initialized: Option<(CString, CString)>,
    /// Tokens of the static prefix (system and tools) the last `needle_init` reported.
    prefix_tokens: u32,
    /// The output buffer handed to `needle_complete`.
    buffer: Vec<u8>,
}

/// The buffer `needle_complete` writes into; grown (up to [`MAX_BUFFER`]) when an answer fills it.
const INITIAL_BUFFER: usize = 64 * 1024;
const MAX_BUFFER: usize = 4 * 1024 * 1024;

/// One raw answer of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The JSON text the engine wrote (parse it with [`parse_output`](crate::parse_output)).
    pub raw: String,
    /// Tokens generated (the return value of `needle_complete`).
    pub generated_tokens: u32,
    /// Tokens of the static prefix (system facts and tools) the engine holds.
    pub prefix_tokens: u32,
    /// Whether this call had to (re-)run `needle_init` because the system or tools changed.
    pub reinitialized: bool,
    /// Wall time of the call, waiting for the lock excluded.
    pub elapsed: Duration,
}

/// The Needle 3 engine of this process: `libneedle3.so` with `needle3.cact` loaded.
///
/// The engine keeps global state (one model, one tool set, one conversation), so a process
/// holds at most one, shared as `Arc<Needle>`, and every call goes through one lock. Calls
/// block for a fraction of a second: from async code use [`Needle::complete_async`] (or
/// [`NeedleLlm`](crate::NeedleLlm), which does).
///
/// ```no_run
/// use switchboard_needle::{Needle, NeedlePaths};
/// let needle = Needle::load(&NeedlePaths::from_env()?, true)?;
/// let tools = r#"[{"name":"get_hours","description":"Opening hours.","parameters":{"type":"object","properties":{}}}]"#;
/// let answer = needle.complete("", tools, "When are you open?", 256)?;
/// println!("{}", answer.raw); // {"type":"call",...,"function_calls":[{"name":"get_hours",...}],...}
/// # Ok::<(), switchboard_needle::NeedleError>(())
/// ```
pub struct Needle {
    paths: NeedlePaths,
    api: Api,
    state: Mutex<State>,
    load_time: Duration,
    // Never unloaded, not even after a failed load: the engine starts a thread of its own and
    // registers thread-local destructors, which crash once its code is unmapped.
    _library: ManuallyDrop<Library>,
}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needle")
            .field("paths", &self.paths)
            .field("load_time", &self.load_time)
            .finish_non_exhaustive()
    }
}

static LOADED: Mutex<Option<Arc<Needle>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Needle {
    /// Loads the engine and its weights, once per process.
    ///
    /// Both files must exist (a missing one is a [`NeedleError::MissingFile`] naming it and
    /// the fix). With `verify_checksums`, they are checked against [`LIBRARY_SHA256`] and
    /// [`WEIGHTS_SHA256`] first (the library is native code about to run in-process). A second
    /// call with the same paths returns the same engine; other paths are an error, since the
    /// engine holds one model per process.
    pub fn load(paths: &NeedlePaths, verify_checksums: bool) -> Result<Arc<Needle>, NeedleError> {
        paths.check()?;
        let mut loaded = lock(&LOADED);
        if let Some(needle) = loaded.as_ref() {
            return if needle.paths == *paths {
                Ok(needle.clone())
            } else {
                Err(NeedleError::AlreadyLoaded {
                    loaded: needle.paths.clone(),
                    requested: paths.clone(),
                })
            };
        }
        let started = Instant::now();
        if verify_checksums {
            verify(&paths.library, LIBRARY_SHA256, &read(&paths.library)?)?;
        }
        let weights = read(&paths.weights)?;
        if verify_checksums {
            verify(&paths.weights, WEIGHTS_SHA256, &weights)?;
        }
        let library_error = |message: String| NeedleError::Library {
            path: paths.library.clone(),
            message,
        };
        // SAFETY: loading a shared library runs its initialisers. The file is the engine this
        // crate is written for (pinned by SHA-256 when `verify_checksums` is set).
        let library = unsafe { Library::new(&paths.library) }
            .map(ManuallyDrop::new)
            .map_err(|e| library_error(format!("dlopen failed: {e}")))?;
        // SAFETY: the signatures are those of the engine's C ABI (from its ctypes bindings).
        let api = unsafe {
            Api {
                load: symbol::<LoadFn>(&library, b"needle_load\0").map_err(&library_error)?,
                init: symbol::<InitFn>(&library, b"needle_init\0").map_err(&library_error)?,
                complete: symbol::<CompleteFn>(&library, b"needle_complete\0")
                    .map_err(&library_error)?,
                reset: symbol::<ResetFn>(&library, b"needle_reset\0").map_err(&library_error)?,
                last_error: symbol::<LastErrorFn>(&library, b"needle_last_error\0")
                    .map_err(&library_error)?,
            }
        };
        // SAFETY: the pointer and length describe `weights`, alive for the call; the engine
        // copies what it needs (its Python wrapper frees the bytes right after the call too).
        let rc = unsafe { (api.load)(weights.as_ptr().cast(), weights.len() as u64) };
        if rc < 0 {
            return Err(NeedleError::Weights {
                path: paths.weights.clone(),
                message: last_error(&api).unwrap_or_else(|| format!("needle_load returned {rc}")),
            });
        }
        drop(weights);
        let needle = Arc::new(Needle {
            paths: paths.clone(),
            api,
            state: Mutex::new(State {
                initialized: None,
                prefix_tokens: 0,
                buffer: vec![0; INITIAL_BUFFER],
            }),
            load_time: started.elapsed(),
            _library: library,
        });
        *loaded = Some(needle.clone());
        tracing::debug!(library = %paths.library.display(), weights = %paths.weights.display(), load_time = ?needle.load_time, "Needle loaded");
        Ok(needle)
    }

    /// Loads from [`NeedlePaths::from_env`], checking the pinned SHA-256 sums.
    pub fn from_env() -> Result<Arc<Needle>, NeedleError> {
        Self::load(&NeedlePaths::from_env()?, true)
    }

    /// The engine of this process, if one was loaded.
    pub fn loaded() -> Option<Arc<Needle>> {
        lock(&LOADED).clone()
    }

    /// The files it was loaded from.
    pub fn paths(&self) -> &NeedlePaths {
        &self.paths
    }

    /// How long loading took (checksums, reading the weights, `needle_load`).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// One stateless completion: sets the system facts and tools (running `needle_init` only
    /// when they differ from the previous call's), resets the conversation, and asks the
    /// engine about `text`. Blocks for the whole inference (typically 0.2–1 s on one core).
    ///
    /// `tools_json` is a JSON array of `{"name", "description", "parameters"}` objects, keys
    /// in that order (see [`tools_json`](crate::tools_json)).
    pub fn complete(
        &self,
        system: &str,
        tools_json: &str,
        text: &str,
        max_new_tokens: u32,
    ) -> Result<Completion, NeedleError> {
        let system = c_string(system, "system facts")?;
        let tools = c_string(tools_json, "tools JSON")?;
        let text = c_string(text, "text")?;
        let max_new_tokens = c_int::try_from(max_new_tokens).unwrap_or(c_int::MAX);
        let mut state = lock(&self.state);
        let started = Instant::now();
        let api = &self.api;
        let reinitialized = state
            .initialized
            .as_ref()
            .is_none_or(|(s, t)| *s != system || *t != tools);
        if reinitialized {
            state.initialized = None;
            // SAFETY: NUL-terminated strings alive for the call; NULL tool index is allowed.
            let rc = unsafe { (api.init)(system.as_ptr(), tools.as_ptr(), std::ptr::null()) };
            if rc < 0 {
                return Err(NeedleError::Init(
                    last_error(api).unwrap_or_else(|| format!("needle_init returned {rc}")),
                ));
            }
            state.prefix_tokens = rc as u32;
            state.initialized = Some((system, tools));
        }
        loop {
            let len = c_int::try_from(state.buffer.len()).unwrap_or(c_int::MAX);
            state.buffer.fill(0);
            // SAFETY: `reset` takes no argument; `complete` writes at most `len` bytes
            // (NUL included) into the buffer, which is `len` bytes long.
            let rc = unsafe {
                (api.reset)();
                (api.complete)(
                    text.as_ptr(),
                    max_new_tokens,
                    state.buffer.as_mut_ptr().cast(),
                    len,
                )
            };
            let written = state
                .buffer
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(state.buffer.len());
            if rc < 0 {
                let detail = String::from_utf8_lossy(&state.buffer[..written]).into_owned();
                let message = last_error(api)
                    .or_else(|| (!detail.is_empty()).then_some(detail))
                    .unwrap_or_else(|| format!("needle_complete returned {rc}"));
                return Err(NeedleError::Complete(message));
            }
            if written + 1 >= state.buffer.len() {
                // The answer filled the buffer: it may be cut. Ask again with more room.
                if state.buffer.len() >= MAX_BUFFER {
                    return Err(NeedleError::MalformedOutput {
                        message: format!("the answer does not fit {MAX_BUFFER} bytes"),
                        raw: truncate(&String::from_utf8_lossy(&state.buffer[..written])),
                    });
                }
                let bigger = state.buffer.len() * 4;
                state.buffer.resize(bigger, 0);
                continue;
            }
            let raw = String::from_utf8_lossy(&state.buffer[..written]).into_owned();
            return Ok(Completion {
                raw,
                generated_tokens: rc as u32,
                prefix_tokens: state.prefix_tokens,
                reinitialized,
                elapsed: started.elapsed(),
            });
        }
    }

    /// [`Needle::complete`] on a blocking thread (tokio's blocking pool inside a runtime,
    /// a new thread otherwise), so the async runtime never blocks.
    pub async fn complete_async(
        self: &Arc<Self>,
        system: String,
        tools_json: String,
        text: String,
        max_new_tokens: u32,
    ) -> Result<Completion, NeedleError> {
        let this = self.clone();
        run_blocking(move || this.complete(&system, &tools_json, &text, max_new_tokens))
            .await
            .unwrap_or_else(|| {
                Err(NeedleError::Complete(
                    "the inference thread panicked".into(),
                ))
            })
    }
}

/// Runs `f` off the async runtime; `None` if it panicked.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.ok(),
        Err(_) => {
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::Builder::new()
                .name("needle".into())
                .spawn(move || {
                    let _ = tx.send(f());
                })
                .ok()?;
            rx.await.ok()
        }
    }
}

/// A function of the library, copied out as a plain function pointer.
///
/// SAFETY: `T` must be the symbol's true type, and the pointer must not be used after the
/// library is unloaded.
unsafe fn symbol<T: Copy>(library: &Library, name: &[u8]) -> Result<T, String> {
    // SAFETY: forwarded to the caller.
    unsafe { library.get::<T>(name) }.map(|s| *s).map_err(|e| {
        format!(
            "it has no `{}` ({e}); is it the Needle 3 engine?",
            String::from_utf8_lossy(name.strip_suffix(b"\0").unwrap_or(name))
        )
    })
}

fn last_error(api: &Api) -> Option<String> {
    // SAFETY: the engine returns NULL or a NUL-terminated string it owns, valid until its next
    // call; it is copied at once, under the caller's lock.
    let ptr = unsafe { (api.last_error)() };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated (see above).
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    (!text.is_empty()).then_some(text)
}

fn c_string(text: &str, what: &'static str) -> Result<CString, NeedleError> {
    CString::new(text).map_err(|_| NeedleError::Nul { what })
}

fn read(path: &Path) -> Result<Vec<u8>, NeedleError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| NeedleError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(bytes)
}

fn verify(path: &Path, expected: &'static str, bytes: &[u8]) -> Result<(), NeedleError> {
    let actual: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual == expected {
        Ok(())
    } else {
        Err(NeedleError::Checksum {
            path: path.to_owned(),
            expected,
            actual,
        })
    }
}

pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
