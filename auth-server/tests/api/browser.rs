//! A browser for the black-box tests: it keeps cookies like a browser does (by name, for
//! this one server), never follows redirects by itself, and reads the hidden fields of our
//! forms, so that a test walks the sign-in pages step by step over HTTP.

use std::{collections::BTreeMap, sync::Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Response, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::helpers::{PASSWORD, POSTS_WEB_REDIRECT_URI, TestApp};

/// A PKCE pair (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The secret.
    pub verifier: String,
    /// Its S256 challenge.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// One browser: a cookie jar and an HTTP client that does not follow redirects.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    /// A browser with no cookies, pointed at `app`.
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.address)
    }

    /// A browser with no cookies, pointed at `base` (another replica, say).
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::default(),
        }
    }

    /// The same cookies, sent to another replica.
    pub fn moved_to(&self, base: &str) -> Self {
        let moved = Self::at(base);
        *moved.jar.lock().unwrap() = self.jar.lock().unwrap().clone();
        moved
    }

    /// The value of a cookie the server set.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    /// Sets a cookie by hand (an attacker's, or a forged one).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.into(), value.into());
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn remember(&self, resp: &Response) {
        let mut jar = self.jar.lock().unwrap();
        for value in resp.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, val) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), val.trim().to_owned());
            }
        }
    }

    /// `GET` a path (or an absolute URL of this server).
    pub async fn get(&self, path: &str) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(cookies) = self.cookie_header() {
            req = req.header(header::COOKIE, cookies);
        }
        let resp = req.send().await.unwrap();
        self.remember(&resp);
        resp
    }

    /// `POST` a form.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(cookies) = self.cookie_header() {
            req = req.header(header::COOKIE, cookies);
        }
        let resp = req.send().await.unwrap();
        self.remember(&resp);
        resp
    }

    /// `GET /oauth/authorize` with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Response {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// Follows one redirect to a page of this server and returns its HTML.
    pub async fn follow(&self, resp: Response) -> (StatusCode, String) {
        let location = location(&resp);
        let page = self.get(&location).await;
        let status = page.status();
        (status, page.text().await.unwrap())
    }

    /// Submits the sign-in form of `login_page` with an e-mail and a password.
    pub async fn submit_login(&self, login_page: &str, email: &str, password: &str) -> Response {
        let csrf = hidden(login_page, "csrf").expect("the form has a CSRF token");
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("username", email),
            ("password", password),
        ];
        let request = hidden(login_page, "request");
        if let Some(request) = &request {
            form.push(("request", request));
        }
        self.post("/login", &form).await
    }

    /// Follows `resp` to the sign-in page and signs in there with [`PASSWORD`].
    pub async fn sign_in(&self, resp: Response, email: &str) -> Response {
        let (status, page) = self.follow(resp).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        self.submit_login(&page, email, PASSWORD).await
    }

    /// Answers the consent page.
    pub async fn submit_consent(&self, consent_page: &str, decision: &str) -> Response {
        let csrf = hidden(consent_page, "csrf").expect("the form has a CSRF token");
        let request = hidden(consent_page, "request").expect("the form names its request");
        self.post(
            "/consent",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("decision", decision),
            ],
        )
        .await
    }
}

/// The `Location` of a redirect.
pub fn location(resp: &Response) -> String {
    assert!(
        resp.status().is_redirection(),
        "expected a redirect, got {}",
        resp.status()
    );
    resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of a hidden field of our forms.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The standard parameters of an authorization request of `client_id`.
pub fn params<'a>(
    client_id: &'a str,
    redirect_uri: &'a str,
    pkce: &'a Pkce,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "st-123"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// A whole sign-in as `posts-web` (public, trusted): authorize, the login page, the form.
/// Returns the code.
pub async fn sign_in_as_posts_web(
    browser: &Browser,
    pkce: &Pkce,
    email: &str,
    scope: &str,
) -> String {
    let resp = browser
        .authorize(&params("posts-web", POSTS_WEB_REDIRECT_URI, pkce, scope))
        .await;
    let (status, page) = browser.follow(resp).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let resp = browser.submit_login(&page, email, PASSWORD).await;
    let back = location(&resp);
    assert!(back.starts_with(POSTS_WEB_REDIRECT_URI), "{back}");
    query(&back)["code"].clone()
}

/// Exchanges a code as a public client.
pub async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Response {
    app.post_token(&[
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ])
    .await
}
