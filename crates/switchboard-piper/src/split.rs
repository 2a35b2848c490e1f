//! Cutting text into pieces that are synthesised one after the other.

use switchboard::voice::text::SentenceTokenizer;

/// Characters that end a clause inside a sentence when followed by whitespace.
const CLAUSE_MARKS: &[char] = &[',', ';', ':', '—', '–'];

/// Cuts `text` into the pieces a TTS engine synthesises one after the other, so the first
/// audio comes early: sentences (as cut by [`SentenceTokenizer`]: short sentences after the
/// first are joined), and sentences longer than the limit cut further at clause marks
/// (`, ; : —`), then between words. The first piece has at most `first_max_chars`
/// characters, the others at most `max_chars` (a single longer word is cut too). Control
/// characters become spaces and runs of whitespace one space; pieces without a letter or
/// digit (whitespace, lone punctuation such as `...`) are dropped: there is nothing to say.
///
/// ```
/// use switchboard_piper::split_text;
///
/// let pieces = split_text("Sure! Your table for two, by the window, is booked.", 30, 200);
/// assert_eq!(pieces, ["Sure!", "Your table for two, by the window, is booked."]);
/// let pieces = split_text("Your table for two, by the window, is booked.", 30, 200);
/// assert_eq!(pieces, ["Your table for two,", "by the window, is booked."]);
/// ```
pub fn split_text(text: &str, first_max_chars: usize, max_chars: usize) -> Vec<String> {
    let first_max = first_max_chars.max(1);
    let max = max_chars.max(1);
    let mut tokenizer = SentenceTokenizer::new();
    let mut sentences = tokenizer.push(text);
    sentences.extend(tokenizer.flush());
    let mut pieces = Vec::new();
    for sentence in sentences {
        let sentence = normalize_whitespace(&sentence);
        if !sentence.chars().any(char::is_alphanumeric) {
            continue;
        }
        let limit = |pieces: &Vec<String>| if pieces.is_empty() { first_max } else { max };
        if sentence.chars().count() <= limit(&pieces) {
            pieces.push(sentence);
            continue;
        }
        // Pack clauses, then words, greedily into pieces within the limit.
        let mut current = String::new();
        for clause in clauses(&sentence) {
            for unit in fit(clause, max.min(limit(&pieces))) {
                let joined = current.chars().count() + 1 + unit.chars().count();
                if !current.is_empty() && joined > limit(&pieces) {
                    pieces.push(std::mem::take(&mut current));
                }
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&unit);
            }
        }
        if !current.is_empty() {
            pieces.push(current);
        }
    }
    pieces.retain(|p| p.chars().any(char::is_alphanumeric));
    pieces
}

/// Control characters (line breaks, tabs) become spaces; whitespace runs become one space.
fn normalize_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The clauses of a sentence (each keeps its mark), cut after a clause mark followed by a
/// space.
fn clauses(sentence: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = sentence.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if CLAUSE_MARKS.contains(&c)
            && let Some(&(j, ' ')) = chars.peek()
        {
            let clause = sentence[start..i + c.len_utf8()].trim();
            if !clause.is_empty() {
                out.push(clause);
            }
            start = j + 1;
        }
    }
    let rest = sentence[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// `clause` as units of at most `max` characters: itself, or its words, long words cut.
fn fit(clause: &str, max: usize) -> Vec<String> {
    if clause.chars().count() <= max {
        return vec![clause.to_owned()];
    }
    let mut out = Vec::new();
    for word in clause.split(' ').filter(|w| !w.is_empty()) {
        let chars: Vec<char> = word.chars().collect();
        for part in chars.chunks(max) {
            out.push(part.iter().collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_become_pieces() {
        assert_eq!(
            split_text("Hello there. How are you today?\nFine.", 100, 200),
            ["Hello there.", "How are you today? Fine."]
        );
        assert!(split_text("", 100, 200).is_empty());
        assert!(split_text(" \n\t ", 100, 200).is_empty());
        assert_eq!(split_text("a\tb\r\nc", 100, 200), ["a b", "c"]);
        assert!(split_text("... !? —", 100, 200).is_empty());
        assert_eq!(split_text("Well... OK!", 100, 200), ["Well...", "OK!"]);
    }

    #[test]
    fn long_sentences_are_cut_within_the_limits() {
        let text = "one two three, four five six; seven eight nine: ten eleven twelve";
        let pieces = split_text(text, 16, 30);
        assert_eq!(
            pieces,
            [
                "one two three,",
                "four five six;",
                "seven eight nine:",
                "ten eleven twelve"
            ]
        );
        for (i, piece) in pieces.iter().enumerate() {
            assert!(piece.chars().count() <= if i == 0 { 16 } else { 30 });
        }
        // Nothing is lost.
        assert_eq!(pieces.join(" "), text);
    }

    #[test]
    fn huge_words_are_cut() {
        let word = "é".repeat(25);
        let pieces = split_text(&word, 10, 10);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.chars().count() <= 10));
        assert_eq!(pieces.concat(), word);
    }
}
