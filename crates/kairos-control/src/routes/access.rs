//! `/api/login`, `/api/me`, `/api/users`, `/api/tokens`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    IssuedToken, LoggedIn, LoginRequest, Me, NewToken, NewUser, TokenView, UserView,
};

use super::{Body, Shared};
use crate::service::Caller;

pub async fn login(
    State(cp): Shared,
    Body(request): Body<LoginRequest>,
) -> Result<Json<LoggedIn>, Problem> {
    Ok(Json(cp.login(request).await?))
}

pub async fn me(State(cp): Shared, Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(cp.me(&caller))
}

pub async fn users(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<UserView>>, Problem> {
    Ok(Json(cp.users(&caller).await?))
}

pub async fn create_user(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(cp.create_user(&caller, new).await?),
    ))
}

pub async fn tokens(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenView>>, Problem> {
    Ok(Json(cp.tokens(&caller).await?))
}

pub async fn create_token(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(new): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(cp.create_token(&caller, new).await?),
    ))
}
