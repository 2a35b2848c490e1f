//! Running synthesis off the async runtime and streaming its frames.

use futures::channel::mpsc::{UnboundedSender, unbounded};
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::tts::{TtsError, TtsStream};

/// The sending side of a synthesis stream.
pub(crate) type Sender = UnboundedSender<Result<AudioFrame, TtsError>>;

/// A stream fed by `work`, which runs on tokio's blocking pool when called inside a tokio
/// runtime, else on a thread of its own. `work` should return early once the receiver is
/// gone ([`Sender::is_closed`]): the stream was dropped (e.g. the user interrupted).
pub(crate) fn stream_from_worker(work: impl FnOnce(&Sender) + Send + 'static) -> TtsStream {
    let (tx, rx) = unbounded();
    let failed = tx.clone();
    let job = move || work(&tx);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            // The task owns the sender; dropping the handle detaches it.
            drop(handle.spawn_blocking(job));
        }
        Err(_) => {
            if let Err(e) = std::thread::Builder::new()
                .name("switchboard-tts".into())
                .spawn(job)
            {
                let _ = failed.unbounded_send(Err(TtsError::Model(format!(
                    "cannot start a synthesis thread: {e}"
                ))));
            }
        }
    }
    Box::pin(rx)
}

/// Sends `samples` as frames of `frame_len` samples (the last one shorter). Returns `false`
/// when the receiver is gone.
pub(crate) fn send_frames(
    tx: &Sender,
    samples: &[i16],
    sample_rate: u32,
    frame_len: usize,
) -> bool {
    for chunk in samples.chunks(frame_len.max(1)) {
        let frame = AudioFrame::new(chunk.to_vec(), sample_rate, 1).map_err(TtsError::from);
        let failed = frame.is_err();
        if tx.unbounded_send(frame).is_err() || failed {
            return false;
        }
    }
    true
}

/// Number of samples in one frame of `duration` at `sample_rate` (at least 1).
pub(crate) fn frame_len(duration: std::time::Duration, sample_rate: u32) -> usize {
    ((duration.as_secs_f64() * f64::from(sample_rate)).round() as usize).max(1)
}
