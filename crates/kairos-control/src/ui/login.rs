//! Logging in and out.

use super::*;

pub(super) async fn login_page(flash: Flash) -> Response {
    page(
        None,
        "Log in",
        &format!(
            r#"{}<form method="post" action="/ui/login" class="card"><label for="user">User name</label><input id="user" name="user" type="text" autocomplete="username" required autofocus><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required><p><button type="submit">Log in</button></p></form>"#,
            banner(&flash)
        ),
    )
}

pub(super) async fn login_submit(
    State(cp): Shared,
    axum::extract::ConnectInfo(from): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginRequest>,
) -> Response {
    match cp.login(f, Some(from.ip())).await {
        Ok(logged_in) => {
            let token = logged_in.token;
            let mut response = redirect("/ui/channels");
            // `Secure` when the control plane serves TLS: the browser then never sends the
            // session over plain HTTP.
            let secure = if cp.serves_tls() { "; Secure" } else { "" };
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(p) => with_flash("/ui/login", "error", &p.detail),
    }
}

/// Ends the session's token on the control plane, then forgets the cookie.
pub(super) async fn logout(State(cp): Shared, Signed(caller): Signed) -> Response {
    if let Err(p) = cp.logout(&caller).await {
        return error_page(&caller, &p);
    }
    let mut response = redirect("/ui/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kairos_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
