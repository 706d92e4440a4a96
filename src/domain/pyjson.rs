//! Where and why Python's `json` module rejects a text: the position (in characters) and the
//! message FastAPI reports in a `json_invalid` error. Used only once a parse has failed.

/// A syntax error as Python reports it: character offset and message.
pub type PyError = (usize, &'static str);

struct Scanner {
    s: Vec<char>,
}

const WS: [char; 4] = [' ', '\t', '\n', '\r'];
/// Deepest nesting accepted: the parser's own limit (Python's is its recursion limit).
const MAX_DEPTH: usize = 127;

impl Scanner {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(|c| WS.contains(&c)) {
            i += 1;
        }
        i
    }

    fn starts(&self, i: usize, word: &str) -> bool {
        word.chars().enumerate().all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn value(&self, i: usize, depth: usize) -> Result<usize, PyError> {
        if depth >= MAX_DEPTH {
            return Err((i, "Nesting too deep"));
        }
        match self.at(i) {
            Some('"') => self.string(i),
            Some('{') => self.object(i + 1, depth + 1),
            Some('[') => self.array(i + 1, depth + 1),
            Some('n') if self.starts(i, "null") => Ok(i + 4),
            Some('t') if self.starts(i, "true") => Ok(i + 4),
            Some('f') if self.starts(i, "false") => Ok(i + 5),
            Some('N') if self.starts(i, "NaN") => Ok(i + 3),
            Some('I') if self.starts(i, "Infinity") => Ok(i + 8),
            Some('-') if self.starts(i, "-Infinity") => Ok(i + 9),
            _ => self.number(i).ok_or((i, "Expecting value")),
        }
    }

    /// Python's `-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`, matched at `i`.
    fn number(&self, i: usize) -> Option<usize> {
        let digit = |j: usize| self.at(j).is_some_and(|c| c.is_ascii_digit());
        let mut j = i;
        if self.at(j) == Some('-') {
            j += 1;
        }
        match self.at(j) {
            Some('0') => j += 1,
            Some('1'..='9') => {
                while digit(j) {
                    j += 1;
                }
            }
            _ => return None,
        }
        if self.at(j) == Some('.') && digit(j + 1) {
            j += 1;
            while digit(j) {
                j += 1;
            }
        }
        if matches!(self.at(j), Some('e' | 'E')) {
            let mut k = j + 1;
            if matches!(self.at(k), Some('+' | '-')) {
                k += 1;
            }
            if digit(k) {
                while digit(k) {
                    k += 1;
                }
                j = k;
            }
        }
        Some(j)
    }

    /// A string whose opening quote is at `start`; returns the index after the closing quote.
    fn string(&self, start: usize) -> Result<usize, PyError> {
        let mut i = start + 1;
        loop {
            match self.at(i) {
                None => return Err((start, "Unterminated string starting at")),
                Some('"') => return Ok(i + 1),
                Some('\\') => match self.at(i + 1) {
                    None => return Err((start, "Unterminated string starting at")),
                    Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => i += 2,
                    Some('u') => {
                        let hex = (2..6).all(|k| self.at(i + k).is_some_and(|c| c.is_ascii_hexdigit()));
                        if !hex {
                            return Err((i + 1, "Invalid \\uXXXX escape"));
                        }
                        i += 6;
                    }
                    Some(_) => return Err((i, "Invalid \\escape")),
                },
                Some(c) if (c as u32) < 0x20 => return Err((i, "Invalid control character at")),
                Some(_) => i += 1,
            }
        }
    }

    fn object(&self, i: usize, depth: usize) -> Result<usize, PyError> {
        let mut i = self.ws(i);
        match self.at(i) {
            Some('}') => return Ok(i + 1),
            Some('"') => {}
            _ => return Err((i, "Expecting property name enclosed in double quotes")),
        }
        loop {
            i = self.ws(self.string(i)?);
            if self.at(i) != Some(':') {
                return Err((i, "Expecting ':' delimiter"));
            }
            i = self.ws(self.value(self.ws(i + 1), depth)?);
            match self.at(i) {
                Some('}') => return Ok(i + 1),
                Some(',') => {}
                _ => return Err((i, "Expecting ',' delimiter")),
            }
            i = self.ws(i + 1);
            if self.at(i) != Some('"') {
                return Err((i, "Expecting property name enclosed in double quotes"));
            }
        }
    }

    fn array(&self, i: usize, depth: usize) -> Result<usize, PyError> {
        let mut i = self.ws(i);
        if self.at(i) == Some(']') {
            return Ok(i + 1);
        }
        loop {
            i = self.ws(self.value(i, depth)?);
            match self.at(i) {
                Some(']') => return Ok(i + 1),
                Some(',') => i = self.ws(i + 1),
                _ => return Err((i, "Expecting ',' delimiter")),
            }
        }
    }
}

/// The error Python's `json.loads` raises for `text`, or `None` if Python accepts it.
pub fn python_error(text: &str) -> Option<PyError> {
    let sc = Scanner { s: text.chars().collect() };
    let end = match sc.value(sc.ws(0), 0) {
        Ok(end) => end,
        Err(e) => return Some(e),
    };
    let end = sc.ws(end);
    (end < sc.s.len()).then_some((end, "Extra data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what Python 3's json.loads reports for each text.
    #[test]
    fn errors_match_python() {
        for (text, pos, msg) in [
            (r#"{"evaluation":"a","model":"b""#, 29, "Expecting ',' delimiter"),
            ("[1,2", 4, "Expecting ',' delimiter"),
            (r#"{"evaluation":"a",}"#, 18, "Expecting property name enclosed in double quotes"),
            ("{", 1, "Expecting property name enclosed in double quotes"),
            (r#"{"evaluation":"abc"#, 14, "Unterminated string starting at"),
            (r#"{"a":tru}"#, 5, "Expecting value"),
            (r#"{"a":-}"#, 5, "Expecting value"),
            (r#"{"a":1.}"#, 6, "Expecting ',' delimiter"),
            (r#"{"a":01}"#, 6, "Expecting ',' delimiter"),
            (r#"{"a":"\x"}"#, 6, "Invalid \\escape"),
            ("{\"a\":\"b\u{1}\"}", 7, "Invalid control character at"),
            (r#"{"evaluation":"é",}"#, 18, "Expecting property name enclosed in double quotes"),
            ("   ", 3, "Expecting value"),
            (r#"{"evaluation":"#, 14, "Expecting value"),
            ("{} x", 3, "Extra data"),
            (r#"{"a":"\u12"}"#, 7, "Invalid \\uXXXX escape"),
            ("[1,]", 3, "Expecting value"),
            (r#"{"a":1,}"#, 7, "Expecting property name enclosed in double quotes"),
            (r#"{"a" 1}"#, 5, "Expecting ':' delimiter"),
        ] {
            assert_eq!(python_error(text), Some((pos, msg)), "{text}");
        }
        for ok in ["{}", "[]", " [1, -2.5e3, NaN, -Infinity, \"\\u00e9\"] ", "null"] {
            assert_eq!(python_error(ok), None, "{ok}");
        }
    }
}
