//! Token counting with a view contract's BPE encoding, exact and fast.
//!
//! A BPE encoder (tiktoken's) first splits the text into pieces with a regular expression,
//! then encodes each piece on its own: a document's count is the sum of its pieces' counts.
//! Most of tiktoken's time goes to that expression (a backtracking one, for its lookahead),
//! and the composites repeat the same few pieces — JSON keys, punctuation runs, the digit
//! triples of numbers, names — millions of times. So for `o200k_base` on ASCII text (what the
//! views render: serde_json writes ASCII for ASCII data) [`Tokenizer::count`] splits with a
//! hand-written scanner that follows the expression alternative by alternative, and counts
//! each distinct piece once per thread with tiktoken itself. Any other text, and
//! `cl100k_base`, goes through tiktoken whole. The test below compares both paths on
//! random text over every ASCII byte and on JSON documents.

use std::cell::RefCell;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// The encodings a view contract may name.
pub const TOKENIZERS: [&str; 2] = ["o200k_base", "cl100k_base"];

/// Distinct pieces remembered per thread before the memory starts over.
const PIECE_CACHE_LIMIT: usize = 1 << 20;

thread_local! {
    /// `o200k_base` piece → its token count.
    static O200K_PIECES: RefCell<FxHashMap<Box<[u8]>, u32>> = RefCell::new(FxHashMap::default());
}

/// Token counting with the contract's BPE encoding.
pub struct Tokenizer {
    bpe: &'static tiktoken_rs::CoreBPE,
    pub name: String,
    /// Whether ASCII text takes the scanner + piece-count path (`o200k_base`).
    scanned: bool,
}

impl Tokenizer {
    pub fn new(name: &str) -> Result<Tokenizer> {
        let bpe = match name {
            "o200k_base" => tiktoken_rs::o200k_base_singleton(),
            "cl100k_base" => tiktoken_rs::cl100k_base_singleton(),
            _ => {
                return Err(Error::usage(format!(
                    "tokenizer `{name}`: must be one of {}",
                    TOKENIZERS.join(", ")
                )));
            }
        };
        Ok(Tokenizer {
            bpe,
            name: name.to_string(),
            scanned: name == "o200k_base",
        })
    }

    /// The number of tokens the encoding turns `text` into (no special tokens).
    pub fn count(&self, text: &str) -> usize {
        if !(self.scanned && text.is_ascii()) {
            return self.reference_count(text);
        }
        O200K_PIECES.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() > PIECE_CACHE_LIMIT {
                cache.clear();
            }
            let mut total = 0usize;
            for_each_o200k_piece(text.as_bytes(), |piece| {
                total += if piece.len() == 1 {
                    // Every byte is a token of a byte-level BPE.
                    1
                } else if let Some(&n) = cache.get(piece) {
                    n as usize
                } else {
                    // The scanner only cuts ASCII text at ASCII bytes.
                    let s = std::str::from_utf8(piece).expect("ASCII piece");
                    let n = self.reference_count(s);
                    cache.insert(piece.into(), n as u32);
                    n
                };
            });
            total
        })
    }

    /// tiktoken's own count.
    fn reference_count(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }
}

fn is_space(c: u8) -> bool {
    // `\s` (Unicode White_Space) restricted to ASCII.
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

fn is_punct(c: u8) -> bool {
    // `[^\s\p{L}\p{N}]` restricted to ASCII.
    !is_space(c) && !c.is_ascii_alphanumeric()
}

/// Call `f` with each piece `o200k_base`'s pre-tokenising expression cuts ASCII `b` into:
///
/// ```text
/// 1 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
/// 2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
/// 3 \p{N}{1,3}
/// 4  ?[^\s\p{L}\p{N}]+[\r\n/]*
/// 5 \s*[\r\n]+
/// 6 \s+(?!\S)
/// 7 \s+
/// ```
///
/// taking, at each position, the first alternative that matches (with backtracking).
fn for_each_o200k_piece(b: &[u8], mut f: impl FnMut(&[u8])) {
    let mut p = 0;
    while p < b.len() {
        let end = o200k_piece_end(b, p);
        f(&b[p..end]);
        p = end;
    }
}

fn o200k_piece_end(b: &[u8], p: usize) -> usize {
    let n = b.len();
    let c = b[p];
    // 1 and 2: letters, after at most one byte that is none of CR, LF, letter, digit.
    let letters = if c.is_ascii_alphabetic() {
        Some(p)
    } else if c != b'\r' && c != b'\n' && !c.is_ascii_digit() {
        (p + 1 < n && b[p + 1].is_ascii_alphabetic()).then_some(p + 1)
    } else {
        None
    };
    if let Some(s) = letters {
        // Upper case then lower case: with lower case letters it is 1, without it is 2;
        // either way the piece runs to the end of the lower-case run.
        let mut e = s;
        while e < n && b[e].is_ascii_uppercase() {
            e += 1;
        }
        while e < n && b[e].is_ascii_lowercase() {
            e += 1;
        }
        return e + contraction_len(&b[e..]);
    }
    // 3: up to three digits.
    if c.is_ascii_digit() {
        let mut e = p + 1;
        while e < n && e < p + 3 && b[e].is_ascii_digit() {
            e += 1;
        }
        return e;
    }
    // 4: an optional space, punctuation, then CR, LF and '/'.
    let punct = if c == b' ' && p + 1 < n && is_punct(b[p + 1]) {
        Some(p + 1)
    } else {
        is_punct(c).then_some(p)
    };
    if let Some(s) = punct {
        let mut e = s;
        while e < n && is_punct(b[e]) {
            e += 1;
        }
        while e < n && matches!(b[e], b'\r' | b'\n' | b'/') {
            e += 1;
        }
        return e;
    }
    // What is left starts with white space, up to q.
    let mut q = p;
    while q < n && is_space(b[q]) {
        q += 1;
    }
    // 5: through the last CR or LF of the run.
    if let Some(j) = b[p..q].iter().rposition(|&x| x == b'\r' || x == b'\n') {
        return p + j + 1;
    }
    // 6: the run, less its last byte when text follows; 7: one byte.
    if q == n {
        q
    } else if q - p >= 2 {
        q - 1
    } else {
        q
    }
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)?` at the start of `b`: its length.
fn contraction_len(b: &[u8]) -> usize {
    if b.first() != Some(&b'\'') {
        return 0;
    }
    let lower = |i: usize| b.get(i).map(|c| c.to_ascii_lowercase());
    match lower(1) {
        Some(b's' | b't' | b'm' | b'd') => 2,
        Some(b'r' | b'v') if lower(2) == Some(b'e') => 3,
        Some(b'l') if lower(2) == Some(b'l') => 3,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn counts_agree_with_the_reference_implementation() {
        // Counts from OpenAI's tiktoken (Python) for the same strings.
        let o200k = Tokenizer::new("o200k_base").unwrap();
        assert_eq!(o200k.count("Hello world"), 2);
        let cl100k = Tokenizer::new("cl100k_base").unwrap();
        assert_eq!(cl100k.count("tiktoken is great!"), 6);
        assert!(Tokenizer::new("gpt2").is_err());
    }

    /// The scanner's pieces are the expression's: compared through tiktoken's own count of
    /// the whole text, on random text over every ASCII byte with runs that exercise each
    /// alternative, and on JSON.
    #[test]
    fn the_scanner_cuts_where_the_expression_does() {
        let tok = Tokenizer::new("o200k_base").unwrap();
        let alphabet: Vec<u8> = (0u8..128).collect();
        let runs: [&[u8]; 12] = [
            b" ", b"  \n", b"\r\n", b"\t", b"'s", b"'LL", b"'ve", b"\":\"", b"1234567", b"ABCdef",
            b"xY/", b" {\"",
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        for _ in 0..3000 {
            let len = (rng.next_u32() % 40) as usize;
            let mut s = Vec::new();
            for _ in 0..len {
                let r = rng.next_u32() as usize;
                if r.is_multiple_of(3) {
                    s.extend_from_slice(runs[(r / 3) % runs.len()]);
                } else {
                    s.push(alphabet[(r / 3) % alphabet.len()]);
                }
            }
            let text = String::from_utf8(s).unwrap();
            let mut pieces = Vec::new();
            for_each_o200k_piece(text.as_bytes(), |p| pieces.push(p.to_vec()));
            assert_eq!(pieces.concat(), text.as_bytes());
            // Piece by piece, tiktoken gives the very tokens it gives the whole text.
            let by_piece: Vec<_> = pieces
                .iter()
                .flat_map(|p| tok.bpe.encode_ordinary(std::str::from_utf8(p).unwrap()))
                .collect();
            assert_eq!(by_piece, tok.bpe.encode_ordinary(&text), "{text:?}");
            assert_eq!(tok.count(&text), by_piece.len());
        }
        let doc = serde_json::json!({
            "account_id": "ACC-000042", "arr": 12345.678, "tier": "AtRisk",
            "note": "Customer's renewal - at risk?\n  Call  back / re-quote", "n": [1, -20, 300000],
        })
        .to_string();
        assert!(doc.is_ascii());
        assert_eq!(tok.count(&doc), tok.reference_count(&doc));
    }
}
