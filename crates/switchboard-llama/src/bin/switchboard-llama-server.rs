//! `switchboard-llama-server`: a GGUF model behind an OpenAI-compatible Chat Completions
//! endpoint on this machine.
//!
//! The `switchboard` command starts it for `--llm local/gemma` (llama.cpp cannot be linked
//! into a program that also links whisper.cpp: both vendor ggml), and any OpenAI client can
//! use it:
//!
//! ```sh
//! cargo run -p switchboard-llama --bin switchboard-llama-server -- --listen 127.0.0.1:8089
//! curl -s localhost:8089/v1/chat/completions \
//!   -d '{"messages":[{"role":"user","content":"Hi!"}]}'
//! ```
//!
//! Once the model is loaded it prints one line to stdout, `listening on http://ADDR/v1`, so a
//! parent process can start it on port 0 and read the address.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard_llama::{LlamaLlm, LlamaOptions, model_path_from_env};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(
    version,
    about = "Serves a GGUF model (default: the set-up Gemma 3 270M) as an \
    OpenAI-compatible Chat Completions endpoint (POST /v1/chat/completions, GET /v1/models)."
)]
struct Args {
    /// The GGUF file (default: $SWITCHBOARD_LLAMA_MODEL, else the set-up cache's Gemma 3 270M).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Requests generated at the same time (each costs a llama.cpp context).
    #[arg(long, default_value_t = 1)]
    contexts: usize,
    /// Context window per request, in tokens.
    #[arg(long, default_value_t = 4096)]
    n_ctx: u32,
    /// Most tokens generated per answer.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Threads per context.
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Exit when standard input closes: a parent that dies (even by SIGKILL) takes the server
    /// with it.
    #[arg(long)]
    exit_with_stdin: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard-llama-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let path = match args.model {
        Some(path) => path,
        None => model_path_from_env().map_err(|e| e.to_string())?,
    };
    let options = LlamaOptions::default()
        .with_contexts(args.contexts)
        .with_n_ctx(args.n_ctx)
        .with_max_tokens(args.max_tokens)
        .with_threads(args.threads);
    let llm = tokio::task::spawn_blocking(move || LlamaLlm::load(&path, options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}/v1").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    let server = switchboard_openai::server::serve(listener, llm as Arc<dyn switchboard::llm::Llm>);
    if args.exit_with_stdin {
        tokio::select! {
            served = server => served.map_err(|e| e.to_string()),
            () = stdin_closed() => Ok(()),
        }
    } else {
        server.await.map_err(|e| e.to_string())
    }
}

/// Resolves when standard input reaches its end or fails.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buffer).await {
        if n == 0 {
            break;
        }
    }
}
