//! [`GetDtmfTask`]: collects digits typed on the phone keypad (DTMF tones) or spoken.
//!
//! Telephony transports are not part of Switchboard yet, so keypad events come in through a
//! [`DtmfInput`] handle the task owns: a transport (or a test) takes it with
//! [`GetDtmfTask::input`] before the task runs and pushes [`DtmfEvent`]s into it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool, lock,
    read_digits, spaced,
};
use crate::llm::ToolChoice;
use crate::session::{Agent, AgentContext, AgentTask, ReplyOptions, RunContext, TaskError};
use crate::tools::FunctionTool;

/// The default time after the last key press before the keys are taken as complete.
pub const DEFAULT_DTMF_TIMEOUT: Duration = Duration::from_secs(4);

/// One keypad event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DtmfEvent {
    /// A key: `0`–`9`, `*`, `#` or `A`–`D` (other characters are ignored).
    Digit(char),
}

/// The task that owned a [`DtmfInput`] is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the keypad input's task is gone")]
pub struct DtmfClosed;

/// Where keypad events for one [`GetDtmfTask`] go. Cheap to clone. Events sent before the task
/// starts listening are kept until it does; once the task has finished listening (it completed,
/// failed or was closed), sending fails with [`DtmfClosed`].
#[derive(Debug, Clone)]
pub struct DtmfInput {
    tx: mpsc::UnboundedSender<DtmfEvent>,
}

impl DtmfInput {
    /// Sends one event.
    pub fn send(&self, event: DtmfEvent) -> Result<(), DtmfClosed> {
        self.tx.send(event).map_err(|_| DtmfClosed)
    }

    /// Sends one key press.
    pub fn press(&self, key: char) -> Result<(), DtmfClosed> {
        self.send(DtmfEvent::Digit(key))
    }

    /// Sends each character of `keys` as a key press.
    pub fn press_all(&self, keys: &str) -> Result<(), DtmfClosed> {
        keys.chars().try_for_each(|k| self.press(k))
    }
}

/// What [`GetDtmfTask`] collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetDtmfResult {
    /// The keys, in order, without the stop key: `"1234"` (may contain `*` and `A`–`D`).
    pub digits: String,
}

/// Collects keypad digits.
///
/// Keys arrive through [`GetDtmfTask::input`]. After each key a debounce timer (default
/// [`DEFAULT_DTMF_TIMEOUT`], 4 s) restarts; when it runs out, or the stop key (default `#`)
/// is pressed, the keys entered so far are taken. With [`GetDtmfTask::new`]`(n)` the task
/// completes as soon as `n` keys are in, and taking any other number of keys fails it with
/// `couldn't get the digits: expected n digits, got m`. A stop key pressed before any key is
/// ignored. The caller may also say the digits: the model then calls `record_inputs(inputs)`
/// (same count rule).
///
/// With confirmation, keypad input is read back by a reply (without tools) and spoken input
/// by the tool's output; `confirm_inputs()` completes. Other tools:
/// `decline_dtmf_capture(reason)`. Output: [`GetDtmfResult`].
///
/// Not done yet: the reference also pauses the debounce while the caller or the agent is
/// speaking; Switchboard has no voice activity signal to do that with.
///
/// ```
/// use std::time::Duration;
/// use switchboard::workflows::GetDtmfTask;
/// let task = GetDtmfTask::new(4).with_timeout(Duration::from_secs(3));
/// let keypad = task.input(); // give this to the telephony transport
/// keypad.press_all("12").unwrap();
/// assert_eq!(task.prompt(), "Ask the caller to enter their 4-digit code on the phone keypad, then press #.");
/// // let digits = ctx.run_task(task).await?.digits;
/// ```
pub struct GetDtmfTask {
    num_digits: Option<usize>,
    stop_key: Option<char>,
    timeout: Duration,
    options: CaptureOptions,
    capture: Arc<Capture<GetDtmfResult>>,
    tx: mpsc::UnboundedSender<DtmfEvent>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<DtmfEvent>>>,
    stop: watch::Sender<bool>,
}

impl Default for GetDtmfTask {
    /// Any number of keys (at least one), ended by `#` or the timeout.
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        GetDtmfTask {
            num_digits: None,
            stop_key: Some('#'),
            timeout: DEFAULT_DTMF_TIMEOUT,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new("digits", "record_inputs", "confirm_inputs")),
            tx,
            rx: Mutex::new(Some(rx)),
            stop: watch::Sender::new(false),
        }
    }
}

/// A copy with the same options, nothing captured, and its own keypad input.
impl Clone for GetDtmfTask {
    fn clone(&self) -> Self {
        GetDtmfTask {
            num_digits: self.num_digits,
            stop_key: self.stop_key,
            timeout: self.timeout,
            options: self.options.clone(),
            ..GetDtmfTask::default()
        }
    }
}

capture_builders!(GetDtmfTask);

impl GetDtmfTask {
    /// A task expecting exactly `num_digits` keys (0 means any number, like `default()`).
    pub fn new(num_digits: usize) -> Self {
        GetDtmfTask {
            num_digits: (num_digits > 0).then_some(num_digits),
            ..Self::default()
        }
    }

    /// The key that ends the input at once (default `#`; `None`: only the timeout does).
    pub fn with_stop_key(mut self, key: Option<char>) -> Self {
        self.stop_key = key.map(|k| k.to_ascii_uppercase());
        self
    }

    /// The debounce time after the last key (default 4 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The handle keypad events are sent to.
    pub fn input(&self) -> DtmfInput {
        DtmfInput {
            tx: self.tx.clone(),
        }
    }

    /// The number of keys expected, if fixed.
    pub fn num_digits(&self) -> Option<usize> {
        self.num_digits
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        let what = match self.num_digits {
            Some(n) => format!("their {n}-digit code"),
            None => "the digits".to_owned(),
        };
        let stop = match self.stop_key {
            Some(k) => format!(", then press {k}"),
            None => String::new(),
        };
        self.options.prompt_or(format!(
            "Ask the caller to enter {what} on the phone keypad{stop}."
        ))
    }
}

/// Reads digits the caller said or typed: digits, `*`, `#`, `A`–`D`, and the words "zero" to
/// "nine", "oh", "star", "pound", "hash", "double", "triple"; spaces and dashes are ignored.
///
/// ```
/// use switchboard::workflows::dtmf::parse_dtmf_inputs;
/// assert_eq!(parse_dtmf_inputs("one two 3 star").unwrap(), "123*");
/// assert!(parse_dtmf_inputs("twelve").is_err());
/// ```
pub fn parse_dtmf_inputs(input: &str) -> Result<String, InvalidInput> {
    read_digits(input, |word| match word {
        "star" | "asterisk" | "*" => Some('*'),
        "pound" | "hash" | "#" => Some('#'),
        "a" | "b" | "c" | "d" => word.chars().next().map(|c| c.to_ascii_uppercase()),
        _ => None,
    })
    .map_err(|token| {
        InvalidInput::new(format!(
            "\"{token}\" is not a keypad key. Pass the digits one by one, e.g. \"1 2 3 4\"."
        ))
    })
}

fn keypad_key(key: char) -> Option<char> {
    let key = key.to_ascii_uppercase();
    (key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D')).then_some(key)
}

#[derive(Deserialize, schemars::JsonSchema)]
struct InputsArgs {
    /// The digits the caller said, in order, e.g. "1 2 3 4".
    inputs: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetDtmfTask {
    fn instructions(&self) -> String {
        let count = match self.num_digits {
            Some(n) => format!("{n} digits"),
            None => "some digits".to_owned(),
        };
        let mut task = format!(
            "Your only job now is to get {count} from the caller. They can type them on their \
             phone keypad, which is handled for you, or say them: when they say them, call \
             `record_inputs` with the digits. If the caller cannot or will not give them, call \
             `decline_dtmf_capture`."
        );
        if self.options.confirmation_required() {
            task.push_str(
                " Once the digits are read back, call `confirm_inputs` only after the caller \
                 says they are right; if they are wrong, ask the caller to enter them again.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "record_inputs",
                "Record digits the caller said aloud instead of typing them.",
                move |ctx: RunContext<U>, args: InputsArgs| {
                    let this = this.clone();
                    async move {
                        let mut digits = parse_dtmf_inputs(&args.inputs)?;
                        if let Some(stop) = this.stop_key
                            && digits.ends_with(stop)
                        {
                            digits.pop();
                        }
                        if let Some(message) = count_error(this.num_digits, &digits) {
                            ctx.fail(TaskError::Failed(message)).await?;
                            return Ok(None);
                        }
                        let read_back = format!(
                            "The digits are now {}. Read them back one by one and ask the \
                             caller to confirm them. Do not call `confirm_inputs` until they do.",
                            spaced(&digits)
                        );
                        let shown = spaced(&digits);
                        this.capture
                            .record(
                                &ctx,
                                GetDtmfResult { digits },
                                shown,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
            decline_tool("decline_dtmf_capture", "digits"),
        ];
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        let rx = lock(&self.rx).take();
        if let Some(rx) = rx {
            let listener = Listener {
                ctx: ctx.clone(),
                num_digits: self.num_digits,
                stop_key: self.stop_key,
                timeout: self.timeout,
                confirm: self.options.confirmation_required(),
                capture: self.capture.clone(),
            };
            tokio::spawn(listener.run(rx, self.stop.subscribe()));
        }
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }

    async fn on_exit(&self, _ctx: AgentContext<U>) -> crate::Result<()> {
        self.stop.send_replace(true);
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetDtmfTask {
    type Output = GetDtmfResult;
}

/// Listens to the keypad for one run of the task.
struct Listener<U: Send + 'static> {
    ctx: AgentContext<U>,
    num_digits: Option<usize>,
    stop_key: Option<char>,
    timeout: Duration,
    confirm: bool,
    capture: Arc<Capture<GetDtmfResult>>,
}

impl<U: Send + 'static> Listener<U> {
    async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<DtmfEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut digits = String::new();
        let mut deadline: Option<Instant> = None;
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            let flush = tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                event = rx.recv() => {
                    let Some(DtmfEvent::Digit(key)) = event else { return };
                    let Some(key) = keypad_key(key) else {
                        tracing::debug!("ignoring a key that is not on a keypad");
                        continue;
                    };
                    if Some(key) == self.stop_key {
                        !digits.is_empty()
                    } else {
                        digits.push(key);
                        deadline = Some(Instant::now() + self.timeout);
                        self.num_digits.is_some_and(|n| digits.chars().count() >= n)
                    }
                }
                () = sleep_until_or_forever(deadline) => !digits.is_empty(),
            };
            if !flush {
                continue;
            }
            deadline = None;
            let entered = std::mem::take(&mut digits);
            if !self.finish(entered).await {
                return;
            }
        }
    }

    /// Takes one complete entry; returns whether to keep listening (confirmation pending).
    async fn finish(&self, digits: String) -> bool {
        if let Some(message) = count_error(self.num_digits, &digits) {
            let _ = self.ctx.fail(TaskError::Failed(message)).await;
            return false;
        }
        if !self.confirm {
            let _ = self.ctx.complete(GetDtmfResult { digits }).await;
            return false;
        }
        let shown = spaced(&digits);
        self.capture
            .bind(GetDtmfResult { digits }, shown.clone(), None);
        let read_back = ReplyOptions::instructions(format!(
            "The caller entered {shown} on the keypad. Read the digits back one by one and ask \
             them to confirm."
        ))
        .with_tool_choice(ToolChoice::None);
        let _ = self.ctx.session().generate_reply(read_back);
        true
    }
}

/// The failure message of an entry with the wrong number of keys.
fn count_error(expected: Option<usize>, digits: &str) -> Option<String> {
    let got = digits.chars().count();
    match expected {
        Some(n) if got != n => Some(format!(
            "couldn't get the digits: expected {n} digits, got {got}"
        )),
        _ => None,
    }
}

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
