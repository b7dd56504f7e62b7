//! Request bodies read with a size limit: the one place a body is read at the edge.

use worker::Request;

/// The body when it is at most `limit` bytes; `None` when it is larger (by its declared
/// `Content-Length`, without reading it, or once read).
pub async fn read_limited(req: &mut Request, limit: usize) -> worker::Result<Option<Vec<u8>>> {
    let declared = req.headers().get("Content-Length")?.and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Ok(None);
    }
    let bytes = req.bytes().await?;
    Ok((bytes.len() <= limit).then_some(bytes))
}
