//! Small HTTP helpers, pure: body limits and text decoding.

use std::fmt;

/// Largest JSON body of the admin API (users, enrollment tokens).
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Largest admin command body (a command carries up to 64 KiB of data).
pub const MAX_COMMAND_JSON_BYTES: usize = 8 * MAX_JSON_BYTES;

/// A request body that is over its limit: refused before it is read (by `Content-Length`) or
/// as soon as the bytes read pass the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "body larger than {} bytes", self.limit)
    }
}

impl std::error::Error for TooLarge {}

/// A body read chunk by chunk that never holds more than `limit` bytes: the edge asks for room
/// for each chunk before copying it in, and stops reading at the first chunk that does not
/// fit, so a chunked upload (no `Content-Length`, RFC 9112 §7.1) costs at most `limit` bytes
/// of memory, however long it goes on.
#[derive(Debug)]
pub struct BoundedBody {
    limit: usize,
    bytes: Vec<u8>,
}

impl BoundedBody {
    /// Starts a body under `limit`. A declared `Content-Length` over the limit is refused at
    /// once, without reading; one that does not parse is ignored (the bytes are counted
    /// anyway).
    pub fn new(limit: usize, content_length: Option<&str>) -> Result<BoundedBody, TooLarge> {
        let declared = content_length.and_then(|l| l.trim().parse::<u64>().ok());
        if declared.is_some_and(|l| l > limit as u64) {
            return Err(TooLarge { limit });
        }
        // Room for what was declared, never more than the limit.
        let capacity = declared.map_or(0, |l| l as usize).min(limit);
        Ok(BoundedBody { limit, bytes: Vec::with_capacity(capacity) })
    }

    /// Room for the next chunk of `len` bytes, to be filled by the caller; `TooLarge` (and
    /// nothing allocated) when the body would pass the limit.
    pub fn chunk(&mut self, len: usize) -> Result<&mut [u8], TooLarge> {
        let start = self.bytes.len();
        match start.checked_add(len) {
            Some(end) if end <= self.limit => {
                if end > self.bytes.capacity() {
                    // Grow by doubling as usual, but never past the limit.
                    let want = end.max(self.bytes.capacity().saturating_mul(2)).min(self.limit);
                    self.bytes.reserve_exact(want - start);
                }
                self.bytes.resize(end, 0);
                Ok(&mut self.bytes[start..])
            }
            _ => Err(TooLarge { limit: self.limit }),
        }
    }

    /// Appends a chunk (the native form of [`BoundedBody::chunk`]).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        self.chunk(chunk.len())?.copy_from_slice(chunk);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

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
    fn bounded_body_refuses_a_declared_length_over_the_limit_without_reading() {
        assert_eq!(BoundedBody::new(10, Some("11")).unwrap_err(), TooLarge { limit: 10 });
        assert_eq!(BoundedBody::new(10, Some(" 18446744073709551615 ")).unwrap_err(), TooLarge { limit: 10 });
        assert!(BoundedBody::new(10, Some("10")).is_ok());
        // Unparseable or absent: counted as read.
        for cl in [None, Some("ten"), Some("-1"), Some("99999999999999999999999")] {
            assert!(BoundedBody::new(10, cl).is_ok(), "{cl:?}");
        }
    }

    #[test]
    fn bounded_body_stops_at_the_first_chunk_past_the_limit() {
        let mut b = BoundedBody::new(10, None).unwrap();
        b.push(b"hello").unwrap();
        b.chunk(5).unwrap().copy_from_slice(b"world");
        assert_eq!(b.len(), 10);
        assert_eq!(b.push(b"!"), Err(TooLarge { limit: 10 }));
        assert_eq!(b.chunk(usize::MAX).unwrap_err(), TooLarge { limit: 10 });
        assert_eq!(b.len(), 10, "a refused chunk takes no room");
        assert_eq!(b.into_bytes(), b"helloworld");
        // A body that lied in Content-Length is held to the limit all the same.
        let mut b = BoundedBody::new(4, Some("2")).unwrap();
        assert!(b.push(b"12345").is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn a_64_mib_stream_costs_no_more_than_the_limit() {
        let mut b = BoundedBody::new(64 * 1024, None).unwrap();
        let chunk = vec![b'x'; 16 * 1024];
        let mut pushed = 0;
        while pushed < 64 * 1024 * 1024 {
            if b.push(&chunk).is_err() {
                break;
            }
            pushed += chunk.len();
        }
        assert_eq!(pushed, 64 * 1024, "stopped at the first chunk past the limit");
        let bytes = b.into_bytes();
        assert!(bytes.capacity() <= 64 * 1024, "capacity {}", bytes.capacity());
    }

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
