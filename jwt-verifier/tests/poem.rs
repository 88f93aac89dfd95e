//! The poem integration: RFC 6750 answers with a configurable realm, the middleware, and
//! `Claims` as a handler parameter.

mod common;

use common::{AUDIENCE, ISSUER, key_file, primary};
use jwt_verifier::{BearerAuth, Claims, JwksCache, KeySource, TokenVerifier};
use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route, get, handler};

#[handler]
fn whoami(claims: Claims) -> String {
    format!("{} {}", claims.sub, claims.scope)
}

async fn auth(realm: &str) -> (BearerAuth, tempfile::TempDir) {
    let (dir, path) = key_file(&primary().jwks());
    let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
    keys.load().await.unwrap();
    let verifier = TokenVerifier::builder(keys, ISSUER, AUDIENCE).build();
    (BearerAuth::new(verifier, realm), dir)
}

async fn call(app: &impl Endpoint, authorization: Option<&str>) -> Response {
    let mut request = Request::builder().uri("/me".parse().unwrap());
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    app.get_response(request.finish()).await
}

fn challenge(response: &Response) -> &str {
    response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_middleware_answers_every_failure_with_the_rfc_6750_challenge() {
    let (auth, _dir) = auth("inventory").await;
    let app = Route::new()
        .at("/me", get(whoami))
        .with(auth.require("orders:write".parse().unwrap()));
    let reader = format!("Bearer {}", primary().token("alice", "orders:read"));
    let writer = format!("Bearer {}", primary().token("alice", "orders:write"));

    let missing = call(&app, None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&missing), r#"Bearer realm="inventory""#);
    assert_eq!(missing.headers()[header::CACHE_CONTROL], "no-store");

    let other_scheme = call(&app, Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(challenge(&other_scheme), r#"Bearer realm="inventory""#);

    let bad = call(&app, Some("Bearer not.a.token")).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&bad),
        r#"Bearer realm="inventory", error="invalid_token", error_description="The access token is invalid""#
    );

    let narrow = call(&app, Some(&reader)).await;
    assert_eq!(narrow.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&narrow),
        r#"Bearer realm="inventory", error="insufficient_scope", scope="orders:write""#
    );

    let mut ok = call(&app, Some(&writer)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.take_body().into_string().await.unwrap(),
        "alice orders:write"
    );
}

#[tokio::test]
async fn a_handler_taking_claims_authenticates_with_the_attached_bearer_auth() {
    let (auth, _dir) = auth("orders-api").await;
    let app = Route::new().at("/me", get(whoami)).data(auth);

    let token = format!("Bearer {}", primary().token("bob", ""));
    let mut ok = call(&app, Some(&token)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.take_body().into_string().await.unwrap(), "bob ");

    let expired = {
        let mut claims = primary().claims("bob", "");
        claims["exp"] = 1.into();
        format!("Bearer {}", primary().sign(&primary().header(), &claims))
    };
    let refused = call(&app, Some(&expired)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&refused).contains(r#"error_description="The access token expired""#));
}

#[tokio::test]
async fn a_handler_taking_claims_without_bearer_auth_is_a_500_not_a_panic() {
    let app = Route::new().at("/me", get(whoami)).into_endpoint();
    let response = call(&app, Some("Bearer a.b.c")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn no_key_set_yet_is_a_503_with_retry_after_and_no_challenge() {
    let (_dir, path) = key_file("not a key set");
    let keys = JwksCache::builder(KeySource::File(path)).build().unwrap();
    let auth = BearerAuth::new(TokenVerifier::builder(keys, ISSUER, AUDIENCE).build(), "r");
    let app = Route::new()
        .at("/me", get(whoami))
        .with(auth.require(Default::default()));

    let token = format!("Bearer {}", primary().token("bob", ""));
    let response = call(&app, Some(&token)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn a_realm_cannot_break_out_of_its_quoted_string() {
    let (auth, _dir) = auth("evil\", error=\"none\\\n").await;
    assert_eq!(auth.realm(), "evil, error=none");
    let app = Route::new()
        .at("/me", get(whoami))
        .with(auth.require(Default::default()));
    let response = call(&app, None).await;
    assert_eq!(challenge(&response), r#"Bearer realm="evil, error=none""#);
}
