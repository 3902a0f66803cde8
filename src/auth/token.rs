//! Where each transport carries the token: Socket.IO handshake `auth.token` (with or
//! without `Bearer `) or query `token`; raw WebSocket `Authorization: Bearer` or `?token=`.
//! A Socket.IO client may send its user id beside it (`auth.userId`, as Clerk's do).

use serde_json::Value;

/// The token without a leading `Bearer ` (any case), trimmed.
pub fn strip_bearer(s: &str) -> &str {
    let s = s.trim();
    match (s.get(..6), s.get(6..)) {
        (Some(p), Some(rest))
            if p.eq_ignore_ascii_case("bearer")
                && (rest.is_empty() || rest.starts_with(char::is_whitespace)) =>
        {
            rest.trim_start()
        }
        _ => s,
    }
}

/// `token` from a Socket.IO handshake `auth` object.
pub fn from_socketio_auth(auth: Option<&Value>) -> Option<String> {
    let t = auth?.get("token")?.as_str()?;
    let t = strip_bearer(t);
    (!t.is_empty()).then(|| t.to_string())
}

/// The user id a Socket.IO handshake's `auth` sends beside the token (`userId`).
pub fn user_from_socketio_auth(auth: Option<&Value>) -> Option<String> {
    match auth?.get("userId")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `token` from a URL query string (`a=1&token=…`), percent-decoded.
pub fn from_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| strip_bearer(&v).to_string())
        .filter(|t| !t.is_empty())
}

/// The token of an `Authorization: Bearer …` header value.
pub fn from_authorization(header: Option<&str>) -> Option<String> {
    let h = header?.trim();
    let t = strip_bearer(h);
    (t.len() < h.len() && !t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn where_tokens_are() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer"), "");
        assert_eq!(strip_bearer("Bearerabc"), "Bearerabc");
        assert_eq!(
            from_socketio_auth(Some(&json!({"token": "Bearer t1", "userId": "u"}))),
            Some("t1".into())
        );
        assert_eq!(
            from_socketio_auth(Some(&json!({"token": "t2"}))),
            Some("t2".into())
        );
        assert_eq!(from_socketio_auth(Some(&json!({"token": 5}))), None);
        assert_eq!(from_socketio_auth(None), None);
        assert_eq!(
            user_from_socketio_auth(Some(&json!({"token": "t", "userId": "user_1"}))),
            Some("user_1".into())
        );
        assert_eq!(user_from_socketio_auth(Some(&json!({"token": "t"}))), None);
        assert_eq!(
            from_query(Some("EIO=4&token=a%2Eb&x=1")),
            Some("a.b".into())
        );
        assert_eq!(from_query(Some("token=")), None);
        assert_eq!(from_authorization(Some("Bearer xyz")), Some("xyz".into()));
        assert_eq!(from_authorization(Some("Basic xyz")), None);
    }
}
