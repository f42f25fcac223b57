//! What keeps the UI's pages and forms safe beyond `SameSite`: a CSRF token in every form,
//! checked on every post; security headers on every answer; and what an action did carried
//! to the next page in a cookie, never in a URL someone else could write.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use sha2::{Digest, Sha256};

use super::*;

/// The cookie that carries what the last action did to the page after its redirect.
const FLASH: &str = "kairos_flash";

/// The largest form the CSRF check reads (a channel file pasted into the import form).
const LARGEST_FORM: usize = 32 * 1024 * 1024;

/// The stylesheet's address: pages link it, so the CSP allows no inline style.
pub(super) const STYLESHEET: &str = "/ui/style.css";

/// The session's CSRF token: derived from its token's digest, so it needs no storage and
/// every instance of the control plane checks it alike.
fn csrf_token(caller: &Caller) -> String {
    let digest = caller.token.as_deref().unwrap_or_default();
    let hash = Sha256::digest(format!("kairos-csrf\0{digest}"));
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// `html` with the session's CSRF token in each of its post forms.
pub(super) fn with_csrf(html: &str, caller: &Caller) -> String {
    let field = format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        csrf_token(caller)
    );
    let mut out = String::with_capacity(html.len() + 128);
    let mut rest = html;
    while let Some(at) = rest.find(r#"<form method="post""#) {
        let Some(end) = rest[at..].find('>') else {
            break;
        };
        let tag_end = at + end + 1;
        out.push_str(&rest[..tag_end]);
        out.push_str(&field);
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    out
}

/// Every post under `/ui/` but the login comes with its session's CSRF token; one without
/// it (a form another site made the browser send) is refused before anything runs.
pub(super) async fn check_csrf(
    State(cp): Shared,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let path = request.uri().path();
    if request.method() != axum::http::Method::POST
        || !path.starts_with("/ui/")
        || path == "/ui/login"
    {
        return Ok(next.run(request).await);
    }
    // Without a valid session the page itself sends the browser to the login.
    let Some(caller) = token_of(request.headers()) else {
        return Ok(next.run(request).await);
    };
    let Ok(caller) = cp.caller(caller).await else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, LARGEST_FORM)
        .await
        .map_err(|_| refused("the form is too large"))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let given = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str());
    if given != Some(csrf_token(&caller).as_str()) {
        return Err(refused(
            "this form is out of date or came from another site: reload the page and try again",
        ));
    }
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

fn refused(why: &str) -> Response {
    let mut response = page(
        None,
        "Not sent",
        &format!(
            r#"<p class="error" role="alert">{}</p><p><a href="/ui/channels">Back to the channels</a></p>"#,
            esc(why)
        ),
    );
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// The headers every answer of the control plane carries: no framing, no sniffing, no
/// referrer, and a content security policy that allows the page's own stylesheet and forms
/// and nothing else.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What the last action did, read from its cookie: shown once, by the next page.
#[derive(Default)]
pub(super) struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let mut flash = Flash::default();
        let value = cookie(&parts.headers, FLASH).unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(value).unwrap_or_default();
        for (key, message) in pairs {
            match key.as_str() {
                "ok" => flash.ok = Some(message),
                "error" => flash.error = Some(message),
                _ => {}
            }
        }
        Ok(flash)
    }
}

pub(super) fn banner(flash: &Flash) -> String {
    let mut out = String::new();
    if let Some(ok) = &flash.ok {
        let _ = write!(out, r#"<p class="notice" role="status">{}</p>"#, esc(ok));
    }
    if let Some(error) = &flash.error {
        let _ = write!(out, r#"<p class="error" role="alert">{}</p>"#, esc(error));
    }
    out
}

/// A redirect to `to` that shows `message` there, as `ok` or `error`.
pub(super) fn with_flash(to: &str, key: &str, message: &str) -> Response {
    let value = serde_urlencoded::to_string([(key, message)]).unwrap_or_default();
    let mut response = redirect(to);
    let cookie = format!("{FLASH}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The flash cookie, spent: every page sends this, so a message shows once.
pub(super) fn spent_flash() -> HeaderValue {
    HeaderValue::from_static("kairos_flash=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A cookie's value from a request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_post_form_gets_the_token_and_get_forms_do_not() {
        let caller = Caller {
            name: "ana".into(),
            roles: Vec::new(),
            runtime_group: None,
            token: Some("abc".into()),
        };
        let html = r#"<form method="post" action="/a"><button>A</button></form><form method="get" action="/b"></form><form method="post" action="/c" class="card">"#;
        let out = with_csrf(html, &caller);
        let token = csrf_token(&caller);
        assert_eq!(out.matches(&token).count(), 2, "{out}");
        assert!(out.contains(&format!(
            r#"<form method="post" action="/c" class="card"><input type="hidden" name="csrf" value="{token}">"#
        )));
        let other = Caller {
            token: Some("abd".into()),
            ..caller
        };
        assert_ne!(csrf_token(&other), token, "each session has its own");
    }
}
