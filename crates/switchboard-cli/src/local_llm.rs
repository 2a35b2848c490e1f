//! The embedded LLMs behind `--llm local…`.
//!
//! Needle 3 (the tool router) runs in this process. GGUF models run in a child process,
//! `switchboard-llama-server`, reached over its OpenAI-compatible endpoint: llama.cpp and
//! whisper.cpp each vendor ggml, and the two copies cannot be linked into one program.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use switchboard::llm::{ChatRequest, Llm, LlmStream};
use switchboard_needle::{NeedleLlm, NeedleOptions, RouterLlm};
use switchboard_openai::{OpenAiConfig, OpenAiLlm};
use tokio::process::Command;

/// The helper binary's name.
const SERVER: &str = "switchboard-llama-server";
/// Environment variable naming the helper binary (default: beside this program).
pub const SERVER_ENV: &str = "SWITCHBOARD_LLAMA_SERVER";

/// The model named by `which` (the part of `--llm` after `local`):
///
/// - `""`: Needle 3 routes tool calls, Gemma 3 270M speaks (the local default);
/// - `needle`: Needle 3 alone (it says a fixed line when it calls no tool);
/// - `gemma`: Gemma 3 270M alone (the set-up cache's GGUF);
/// - a path to a `.gguf` file: that model (with its chat template, if it has one).
pub async fn local_llm(which: &str) -> Result<Arc<dyn Llm>, String> {
    match which {
        "" => {
            let gemma = llama_server(None).await?;
            Ok(Arc::new(RouterLlm::new(needle()?, gemma)))
        }
        "needle" => needle(),
        "gemma" => llama_server(None).await,
        path if path.ends_with(".gguf") => llama_server(Some(Path::new(path))).await,
        other => Err(format!(
            "unknown local model `{other}`: use `local` (Needle 3 + Gemma 3 270M), \
             `local/needle`, `local/gemma` or `local/<file.gguf>`"
        )),
    }
}

fn needle() -> Result<Arc<dyn Llm>, String> {
    let needle = NeedleLlm::from_env().map_err(|e| e.to_string())?;
    let options = NeedleOptions {
        fallback_text: "Sorry, could you say that again?".into(),
        ..NeedleOptions::default()
    };
    Ok(Arc::new(needle.with_options(options)))
}

/// A GGUF model served by a child `switchboard-llama-server`; the child lives as long as the
/// returned model and exits with it (or with this process, even when it is killed: the child
/// watches its standard input).
async fn llama_server(model: Option<&Path>) -> Result<Arc<dyn Llm>, String> {
    if let Some(model) = model
        && !model.is_file()
    {
        return Err(format!("no GGUF model at {}", model.display()));
    }
    let server = server_binary().await?;
    let mut command = std::process::Command::new(&server);
    command
        .arg("--exit-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(model) = model {
        command.arg("--model").arg(model);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let stdout = child.stdout.take().ok_or("the helper has no stdout")?;
    let stdin = child.stdin.take();
    let mut helper = Helper { child, stdin };
    // The helper prints its address once its model is loaded, or exits with its error on
    // stderr (which is ours): either way the read ends, however long a big model takes.
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read from {SERVER}: {e}"))?;
    let url = match first.trim_end().strip_prefix("listening on ") {
        Some(url) => url.to_owned(),
        None if first.is_empty() => {
            let status = helper.child.wait().map_err(|e| e.to_string())?;
            return Err(format!(
                "{SERVER} stopped before serving ({status}); its error is above"
            ));
        }
        None => {
            return Err(format!(
                "{SERVER} said `{}` instead of its address",
                first.trim_end()
            ));
        }
    };
    let inner = OpenAiLlm::new(OpenAiConfig::new(url).provider_name("llama.cpp"), "local");
    let model_name = model
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gemma-3-270m-q4_k_m".to_owned());
    Ok(Arc::new(ChildLlm {
        inner,
        model: model_name,
        _helper: helper,
    }))
}

/// The helper binary: `$SWITCHBOARD_LLAMA_SERVER`, else beside this program. Under `cargo run`
/// a missing helper is built first (llama.cpp takes minutes to compile the first time).
async fn server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("this program has no directory")?;
    let beside = dir.join(SERVER);
    if beside.is_file() {
        return Ok(beside);
    }
    let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Err(format!(
            "{SERVER} is not beside {} (build it with `cargo build -p switchboard-llama --bin \
             {SERVER}`, or name it in ${SERVER_ENV})",
            exe.display()
        ));
    };
    eprintln!(
        "building {SERVER} (llama.cpp; the first build takes about ten minutes on two cores)…"
    );
    let mut build = Command::new(cargo);
    build
        .current_dir(manifest_dir)
        .args(["build", "-p", "switchboard-llama", "--bin", SERVER]);
    if dir.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .await
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !beside.is_file() {
        return Err(format!("building {SERVER} failed ({status})"));
    }
    Ok(beside)
}

/// A served model that keeps its server process alive.
struct ChildLlm {
    inner: OpenAiLlm,
    model: String,
    _helper: Helper,
}

/// The helper process, ended and reaped when dropped: it is gone when its model is.
struct Helper {
    child: std::process::Child,
    /// Closing it tells the helper to exit (also when this process dies without dropping it).
    stdin: Option<std::process::ChildStdin>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Llm for ChildLlm {
    fn provider(&self) -> &str {
        self.inner.provider()
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        self.inner.chat(request)
    }
}
