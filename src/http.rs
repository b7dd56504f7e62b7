//! Small HTTP helpers, pure: body limits, text decoding, and the parts of a request's URL.

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

/// The parts of a request URL as the runtime hands it to the Worker: absolute, and already parsed
/// and serialized by the runtime (WHATWG URL: lower-case scheme and host, ASCII, no default port,
/// percent-encoded path), so its parts are found by position rather than by parsing it again
/// (a URL parser with its host and IDNA rules is a large part of a wasm module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The path, `/` at least, still percent-encoded.
    pub path: String,
    /// What follows `?`, without the fragment.
    pub query: String,
}

impl RequestUrl {
    /// `None` for a URL without `scheme://`.
    pub fn parse(url: &str) -> Option<RequestUrl> {
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        // Userinfo never reaches a Worker in a request URL; it is not part of an origin anyway.
        let host = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, h)| h);
        let rest = &rest[end..];
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        Some(RequestUrl {
            origin: format!("{scheme}://{host}"),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            query: query.to_string(),
        })
    }

    /// The query's `application/x-www-form-urlencoded` pairs, decoded as browsers do (a bad
    /// escape is kept as it is, invalid UTF-8 is replaced).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// Whether the host is a loopback name or address (local development serves plain HTTP).
    pub fn is_loopback(&self) -> bool {
        let host = self.origin.split_once("://").map_or("", |(_, h)| h);
        let host = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or(host)
        } else {
            host.split(':').next().unwrap_or(host)
        };
        host == "localhost" || host == "[::1]" || host.starts_with("127.")
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

    /// The parts agree with a full URL parser on every URL shape the runtime serializes.
    #[test]
    fn request_url_parts_agree_with_the_url_crate() {
        for u in [
            "https://e.example/EnrollmentServer/Discovery.svc",
            "https://e.example",
            "https://e.example/",
            "http://localhost:8787/ManagementServer/MDM.svc?dev=ABC%20D&x=1",
            "http://127.0.0.1:8787/api/v1/devices?q=a+b&limit=5&q=second",
            "http://[::1]:8787/admin/?a=%ZZ&b=%E2%82%AC&c=%FF",
            "https://xn--bcher-kva.example/windows-web-agent?appru=ms-app%3A%2F%2Fwindows.immersivecontrolpanel&login_hint=a%40b.c#frag",
            "https://e.example/a/b%2Fc/?",
            "https://e.example?only=query",
            "https://user:pw@e.example:8443/p?q",
        ] {
            let ours = RequestUrl::parse(u).unwrap();
            let theirs = url::Url::parse(u).unwrap();
            assert_eq!(ours.origin, theirs.origin().ascii_serialization(), "{u}");
            assert_eq!(ours.path, theirs.path(), "{u}");
            assert_eq!(ours.query, theirs.query().unwrap_or_default(), "{u}");
            let pairs: Vec<(String, String)> = theirs.query_pairs().into_owned().collect();
            assert_eq!(ours.query_pairs(), pairs, "{u}");
            assert_eq!(ours.param("q"), pairs.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone()), "{u}");
            let host = theirs.host_str().unwrap_or_default();
            assert_eq!(ours.is_loopback(), host == "localhost" || host == "[::1]" || host.starts_with("127."), "{u}");
        }
        assert_eq!(RequestUrl::parse("no-scheme/path"), None);
    }

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
