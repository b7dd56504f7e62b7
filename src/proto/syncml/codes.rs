//! SyncML protocol codes, named once: response status codes (OMA SyncML Representation Protocol
//! 1.2 §10 and OMA-DM 1.2 Protocol §10 "Response Status Codes") and alert codes (OMA-DM 1.2
//! Protocol §8.3.3, [MS-MDM] §2.2.7.2 for the generic alerts Windows sends). Status `Data` is
//! text on the wire; these constants are that text.

/// 200 OK: the command completed.
pub const STATUS_OK: &str = "200";
/// 212 Authentication accepted: no further credentials needed in this session.
pub const STATUS_AUTHENTICATION_ACCEPTED: &str = "212";
/// 213 Chunked item accepted and buffered (`MoreData`).
pub const STATUS_CHUNKED_ITEM_ACCEPTED: &str = "213";
/// 215 Not executed: a command inside a failed Atomic that was never run.
pub const STATUS_NOT_EXECUTED: &str = "215";
/// 216 Atomic roll back OK: the command succeeded but its Atomic failed, so it was undone.
pub const STATUS_ATOMIC_ROLLBACK_OK: &str = "216";
/// 401 Invalid credentials.
pub const STATUS_INVALID_CREDENTIALS: &str = "401";
/// 403 Forbidden.
pub const STATUS_FORBIDDEN: &str = "403";
/// 404 Not found: the target node does not exist (a Replace of a missing node, a Get or
/// Delete of one).
pub const STATUS_NOT_FOUND: &str = "404";
/// 405 Command not allowed on this node (e.g. a Get of a write-only node).
pub const STATUS_COMMAND_NOT_ALLOWED: &str = "405";
/// 406 Optional feature not supported.
pub const STATUS_NOT_SUPPORTED: &str = "406";
/// 407 Missing credentials.
pub const STATUS_MISSING_CREDENTIALS: &str = "407";
/// 418 Already exists: an Add of a node that is there.
pub const STATUS_ALREADY_EXISTS: &str = "418";
/// 500 Command failed.
pub const STATUS_COMMAND_FAILED: &str = "500";
/// 507 Atomic failed: one of its commands failed and the others were rolled back.
pub const STATUS_ATOMIC_FAILED: &str = "507";

/// The numeric SyncHdr statuses the session engine decides between.
pub const CODE_OK: u16 = 200;
pub const CODE_AUTHENTICATION_ACCEPTED: u16 = 212;
pub const CODE_INVALID_CREDENTIALS: u16 = 401;
pub const CODE_FORBIDDEN: u16 = 403;
pub const CODE_MISSING_CREDENTIALS: u16 = 407;

/// Whether a status code means success: the 2xx class (OMA SyncML RepPro §10.1).
pub fn is_success(code: &str) -> bool {
    code.len() == 3 && code.starts_with('2') && code.bytes().all(|b| b.is_ascii_digit())
}

/// 1200 Server-initiated management session.
pub const ALERT_SERVER_INITIATED_MGMT: &str = "1200";
/// 1201 Client-initiated management session.
pub const ALERT_CLIENT_INITIATED_MGMT: &str = "1201";
/// 1222 Next message: more messages of a package follow.
pub const ALERT_NEXT_MESSAGE: &str = "1222";
/// 1223 Session abort.
pub const ALERT_SESSION_ABORT: &str = "1223";
/// 1224 Generic alert (Windows: DM session type, login status and others).
pub const ALERT_GENERIC: &str = "1224";
/// 1226 Generic alert carrying a client event, e.g. the user's unenrollment ([MS-MDM]).
pub const ALERT_CLIENT_EVENT: &str = "1226";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_the_2xx_class() {
        for ok in [STATUS_OK, STATUS_AUTHENTICATION_ACCEPTED, STATUS_CHUNKED_ITEM_ACCEPTED, "202", "216"] {
            assert!(is_success(ok), "{ok}");
        }
        for bad in ["405", "500", "507", "418", "2", "2000", "2x0", ""] {
            assert!(!is_success(bad), "{bad}");
        }
    }
}
