//! Logging in and out.

use super::*;

pub(super) async fn login_page(Query(flash): Query<Flash>) -> Response {
    page(
        None,
        "Log in",
        &format!(
            r#"{}<form method="post" action="/ui/login" class="card"><label for="user">User name</label><input id="user" name="user" type="text" autocomplete="username" required autofocus><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required><p><button type="submit">Log in</button></p></form>"#,
            banner(&flash)
        ),
    )
}

pub(super) async fn login_submit(State(cp): Shared, Form(f): Form<LoginRequest>) -> Response {
    match cp.login(f).await {
        Ok(logged_in) => {
            let token = logged_in.token;
            let mut response = redirect("/ui/channels");
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(p) => with_flash("/ui/login", "error", &p.detail),
    }
}

pub(super) async fn logout() -> Response {
    let mut response = redirect("/ui/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kairos_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
