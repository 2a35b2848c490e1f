//! Text on its way to speech: an incremental [`SentenceTokenizer`] that cuts a streaming LLM
//! reply into sentences as soon as each is complete, and the transforms applied before a
//! sentence is spoken ([`filter_markdown`], [`filter_emoji`]).
//!
//! ```
//! use switchboard::voice::text::{SentenceTokenizer, TextTransform};
//!
//! let mut tokenizer = SentenceTokenizer::new();
//! let mut sentences = Vec::new();
//! for delta in ["Sure! Your **cleaning** is ", "booked for Tuesday at 3.30 pm. ", "Anything else? 😊"] {
//!     sentences.extend(tokenizer.push(delta));
//! }
//! sentences.extend(tokenizer.flush());
//! // The first sentence goes out alone so speech starts early; later short ones are joined.
//! assert_eq!(sentences, ["Sure!", "Your **cleaning** is booked for Tuesday at 3.30 pm.", "Anything else? 😊"]);
//!
//! let spoken: Vec<String> = sentences.iter().map(|s| TextTransform::apply_all(&TextTransform::DEFAULT, s)).collect();
//! assert_eq!(spoken, ["Sure!", "Your cleaning is booked for Tuesday at 3.30 pm.", "Anything else?"]);
//! ```

/// Cuts streamed text into sentences.
///
/// A sentence ends at `.`, `!`, `?` or `…` (optionally followed by closing quotes or brackets)
/// followed by whitespace and a word that does not start in lower case, or at a line break. Common abbreviations (`Dr.`, `e.g.`) and single
/// initials do not end a sentence, and neither does a point between digits (`3.30`). Sentences
/// shorter than [`min_len`](SentenceTokenizer::with_min_len) characters are joined with the
/// next one, so TTS is not called for a lone "Sure!" when more follows quickly; the first
/// sentence of a reply is exempt (`min_first_len`) so the first audio starts early.
#[derive(Debug, Clone)]
pub struct SentenceTokenizer {
    buffer: String,
    /// Sentences too short to emit alone, waiting for the next one.
    pending: String,
    min_len: usize,
    emitted_any: bool,
    min_first_len: usize,
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no",
    "dept", "inc", "ltd", "co", "mt", "ave", "apt", "min", "max", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

impl Default for SentenceTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl SentenceTokenizer {
    /// A tokenizer joining sentences shorter than 20 characters (the first one: 1).
    pub fn new() -> Self {
        SentenceTokenizer {
            buffer: String::new(),
            pending: String::new(),
            min_len: 20,
            emitted_any: false,
            min_first_len: 1,
        }
    }

    /// Sentences shorter than `min_len` characters are joined with the next one.
    pub fn with_min_len(mut self, min_len: usize) -> Self {
        self.min_len = min_len;
        self
    }

    /// The minimum length of the first sentence (default 1: speak as early as possible).
    pub fn with_min_first_len(mut self, min_first_len: usize) -> Self {
        self.min_first_len = min_first_len;
        self
    }

    /// Adds streamed text; returns the sentences it completed, trimmed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buffer.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = sentence_end(&self.buffer) {
            let sentence: String = self.buffer[..end].trim().to_owned();
            self.buffer.drain(..end);
            self.accept(sentence, &mut out);
        }
        out
    }

    /// Ends the text: returns what is left as a last sentence (nothing if only whitespace).
    pub fn flush(&mut self) -> Vec<String> {
        let rest = std::mem::take(&mut self.buffer);
        let mut last = std::mem::take(&mut self.pending);
        join(&mut last, rest.trim());
        self.emitted_any = false;
        if last.is_empty() { vec![] } else { vec![last] }
    }

    fn accept(&mut self, sentence: String, out: &mut Vec<String>) {
        if sentence.is_empty() {
            return;
        }
        join(&mut self.pending, &sentence);
        let min = if self.emitted_any {
            self.min_len
        } else {
            self.min_first_len
        };
        if self.pending.chars().count() >= min {
            out.push(std::mem::take(&mut self.pending));
            self.emitted_any = true;
        }
    }
}

fn join(into: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    if !into.is_empty() {
        into.push(' ');
    }
    into.push_str(more);
}

/// Byte index just past the first complete sentence in `text` (including the whitespace that
/// proved it complete), or `None` if no sentence is complete yet.
fn sentence_end(text: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if c == '\n' {
            if text[..pos].trim().is_empty() {
                continue;
            }
            return Some(pos + 1);
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        // Skip closing quotes/brackets and repeated punctuation ("?!", "...").
        let mut j = i + 1;
        while j < chars.len()
            && matches!(
                chars[j].1,
                '"' | '\'' | ')' | ']' | '”' | '’' | '.' | '!' | '?'
            )
        {
            j += 1;
        }
        let Some(&(next_pos, next)) = chars.get(j) else {
            return None; // the text may continue: "3." could become "3.30"
        };
        if !next.is_whitespace() {
            continue;
        }
        if c == '.' && is_abbreviation(&text[..pos]) {
            continue;
        }
        // "He said "stop!" and left": a lower-case word after the mark continues the
        // sentence. Wait for that word before deciding (unless a line break decides it).
        let following = chars[j..].iter().find(|(_, c)| !c.is_whitespace());
        match following {
            None if !chars[j..].iter().any(|(_, c)| *c == '\n') => return None,
            Some((_, c)) if c.is_lowercase() => continue,
            _ => {}
        }
        return Some(next_pos + next.len_utf8());
    }
    None
}

fn is_abbreviation(before_point: &str) -> bool {
    let word = before_point
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
        || ABBREVIATIONS.contains(&lower.as_str())
}

/// A transform applied to each sentence before it is sent to TTS. The text stored in the
/// conversation keeps the original; only the spoken text is transformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextTransform {
    /// [`filter_markdown`].
    Markdown,
    /// [`filter_emoji`].
    Emoji,
}

impl TextTransform {
    /// The transforms a session applies by default: markdown, then emoji.
    pub const DEFAULT: [TextTransform; 2] = [TextTransform::Markdown, TextTransform::Emoji];

    /// Applies this transform.
    pub fn apply(self, text: &str) -> String {
        match self {
            TextTransform::Markdown => filter_markdown(text),
            TextTransform::Emoji => filter_emoji(text),
        }
    }

    /// Applies `transforms` in order.
    pub fn apply_all(transforms: &[TextTransform], text: &str) -> String {
        let mut text = text.to_owned();
        for transform in transforms {
            text = transform.apply(&text);
        }
        text
    }
}

/// Removes markdown that should not be read aloud: emphasis markers (`**`, `__`, `*`, `~~`),
/// inline code backticks and code fences, heading and quote markers, list bullets, and link
/// targets (`[text](url)` becomes `text`). Words are kept.
pub fn filter_markdown(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            continue;
        }
        let mut rest = trimmed.trim_start_matches('#').trim_start_matches('>');
        if rest.len() != trimmed.len() {
            rest = rest.trim_start();
        }
        for bullet in ["- ", "* ", "+ "] {
            if let Some(r) = rest.strip_prefix(bullet) {
                rest = r;
            }
        }
        lines.push(strip_inline_markdown(rest));
    }
    let joined = lines.join("\n");
    if text.ends_with('\n') {
        joined + "\n"
    } else {
        joined
    }
}

fn strip_inline_markdown(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                // [text](target) -> text
                if let Some(close) = chars[i + 1..].iter().position(|&c| c == ']') {
                    let close = i + 1 + close;
                    if chars.get(close + 1) == Some(&'(')
                        && let Some(end) = chars[close + 2..].iter().position(|&c| c == ')')
                    {
                        out.extend(&chars[i + 1..close]);
                        i = close + 2 + end + 1;
                        continue;
                    }
                }
                out.push(c);
            }
            '`' => {}
            '*' | '_' | '~' => {
                // Emphasis markers are runs of the same character touching a word; a lone
                // character between spaces ("2 * 3", "snake_case") is kept.
                let run_end = chars[i..]
                    .iter()
                    .position(|&x| x != c)
                    .map_or(chars.len(), |p| i + p);
                let before = i.checked_sub(1).map(|j| chars[j]);
                let after = chars.get(run_end).copied();
                let touches_word = before.is_none_or(|b| !b.is_alphanumeric())
                    != after.is_none_or(|a| !a.is_alphanumeric());
                let lone_marker = c == '~' && run_end - i == 1;
                if touches_word && !lone_marker {
                    i = run_end;
                    continue;
                }
                out.extend(&chars[i..run_end]);
                i = run_end;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Removes emoji (pictographs, symbols, flags, variation selectors and joiners) and the space
/// they leave at the end of the text.
pub fn filter_emoji(text: &str) -> String {
    let filtered: String = text.chars().filter(|&c| !is_emoji(c)).collect();
    let mut out = String::with_capacity(filtered.len());
    let mut last_space = false;
    for c in filtered.chars() {
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
    if !text.ends_with(' ') {
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
    }
    out
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // pictographs, emoticons, transport, flags, supplemental symbols
        | 0x2600..=0x27BF   // miscellaneous symbols and dingbats
        | 0x2B00..=0x2BFF   // arrows and stars used as emoji
        | 0xFE0E..=0xFE0F   // variation selectors
        | 0x200D            // zero-width joiner
        | 0x20E3            // combining keycap
        | 0xE0020..=0xE007F // tag characters (subdivision flags)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(deltas: &[&str]) -> Vec<String> {
        let mut t = SentenceTokenizer::new();
        let mut out = Vec::new();
        for d in deltas {
            out.extend(t.push(d));
        }
        out.extend(t.flush());
        out
    }

    #[test]
    fn sentences_are_cut_as_soon_as_they_are_complete() {
        let mut t = SentenceTokenizer::new();
        assert!(t.push("Hello there").is_empty());
        assert!(
            t.push(".").is_empty(),
            "a point may still be a decimal point"
        );
        assert!(t.push(" ").is_empty(), "the next word decides");
        assert_eq!(t.push("How"), ["Hello there."]);
        assert_eq!(
            t.push(" are you doing today? I"),
            ["How are you doing today?"]
        );
        assert_eq!(t.flush(), ["I"]);
    }

    #[test]
    fn short_sentences_join_the_next_one_but_the_first_is_spoken_early() {
        assert_eq!(
            split(&["Sure! Okay. Fine. Your visit is on Monday."]),
            ["Sure!", "Okay. Fine. Your visit is on Monday."]
        );
        let mut t = SentenceTokenizer::new().with_min_first_len(20);
        assert_eq!(
            t.push("Sure! Okay. Your visit is on Monday. Bye"),
            ["Sure! Okay. Your visit is on Monday."]
        );
    }

    #[test]
    fn abbreviations_decimals_and_initials_do_not_end_sentences() {
        assert_eq!(
            split(&[
                "Dr. Smith sees you at 3.30 p",
                "m. on Jan. 5, e.g. after lunch. J. R. R. Tolkien wrote it."
            ]),
            [
                "Dr. Smith sees you at 3.30 pm. on Jan. 5, e.g. after lunch.",
                "J. R. R. Tolkien wrote it."
            ]
        );
    }

    #[test]
    fn quotes_repeated_punctuation_and_line_breaks() {
        let mut t = SentenceTokenizer::new().with_min_len(1);
        let mut out = t.push("He said \"stop!\" and left... Really?! Yes.\nNext line here");
        out.extend(t.flush());
        assert_eq!(
            out,
            [
                "He said \"stop!\" and left...",
                "Really?!",
                "Yes.",
                "Next line here"
            ]
        );
        assert_eq!(
            split(&["He said \"stop!\" and left... Really?! Yes.\nNext line here"]),
            [
                "He said \"stop!\" and left...",
                "Really?! Yes. Next line here"
            ]
        );
    }

    #[test]
    fn whitespace_only_input_yields_nothing() {
        assert!(split(&["  ", "\n\n", " "]).is_empty());
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        assert_eq!(
            split(&["Ça va? Très bien — merci beaucoup. ", "😊"]),
            ["Ça va?", "Très bien — merci beaucoup.", "😊"]
        );
    }

    #[test]
    fn markdown_is_removed_but_words_kept() {
        assert_eq!(
            filter_markdown("**Bold** and _italic_ and `code`"),
            "Bold and italic and code"
        );
        assert_eq!(
            filter_markdown("# Title\n- first\n* second\n> quoted"),
            "Title\nfirst\nsecond\nquoted"
        );
        assert_eq!(
            filter_markdown("See [our site](https://x.example/a) now"),
            "See our site now"
        );
        assert_eq!(filter_markdown("```rust\nlet x = 1;\n```"), "let x = 1;");
        assert_eq!(
            filter_markdown("2 * 3 = 6 and snake_case stays, ~~gone~~ ~5"),
            "2 * 3 = 6 and snake_case stays, gone ~5"
        );
        assert_eq!(filter_markdown("[unclosed link"), "[unclosed link");
    }

    #[test]
    fn emoji_are_removed() {
        assert_eq!(
            filter_emoji("Great 👍 see you 🇺🇸 soon ❤️!"),
            "Great see you soon !"
        );
        assert_eq!(filter_emoji("family 👨‍👩‍👧 ok"), "family ok");
        assert_eq!(filter_emoji("plain text, 100% ok"), "plain text, 100% ok");
    }
}
