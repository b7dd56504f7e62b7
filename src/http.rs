//! Small HTTP helpers, pure: body limits and text decoding.

/// Largest JSON body of the admin API (users, enrollment tokens).
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Largest admin command body (a command carries up to 64 KiB of data).
pub const MAX_COMMAND_JSON_BYTES: usize = 8 * MAX_JSON_BYTES;

/// `%XX` decoding of a path segment or form value (`+` is left alone: see [`form_decode`]).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes an `application/x-www-form-urlencoded` body into pairs.
pub fn form_decode(body: &str) -> Option<Vec<(String, String)>> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(&k.replace('+', " "))?, percent_decode(&v.replace('+', " "))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%40b.c").as_deref(), Some("a@b.c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
        let f = form_decode("a=1+2&b=%26x&c").unwrap();
        assert_eq!(f, vec![("a".into(), "1 2".into()), ("b".into(), "&x".into()), ("c".into(), "".into())]);
    }
}
