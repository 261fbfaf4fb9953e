//! The JWT attack suite: real signed tokens, dev (HS256) and OIDC (RS256/ES256 from a JWKS that
//! this test serves), every one of which must be refused with the right status.

use crate::helpers::{AUDIENCE, ISSUER, SIGNING_KEY, TestApp, problem};
use axum::Json;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(sub: Option<&str>, iss: &str, aud: &str) -> Value {
    let mut c = json!({ "iss": iss, "aud": aud, "iat": now(), "exp": now() + 600 });
    if let Some(sub) = sub {
        c["sub"] = json!(sub);
    }
    c
}

fn hs256(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn dev_claims() -> Value {
    claims(Some("alice"), ISSUER, AUDIENCE)
}

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.get("/api/orders")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn refused(app: &TestApp, token: &str, status: u16, why: &str) {
    let res = app
        .get("/api/orders")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), status, "{why}");
    problem(res, status).await;
}

#[tokio::test]
async fn dev_mode_accepts_its_own_tokens_and_refuses_forgeries() {
    let app = TestApp::spawn().await;
    let key = SIGNING_KEY.as_bytes();
    assert_eq!(status_with(&app, &app.token("alice").await).await, 200);
    assert_eq!(status_with(&app, &hs256(&dev_claims(), key)).await, 200);

    let good = hs256(&dev_claims(), key);
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_payload = B64.encode(claims(Some("admin"), ISSUER, AUDIENCE).to_string());
    refused(
        &app,
        &format!("{head}.{forged_payload}.{sig}"),
        401,
        "tampered payload",
    )
    .await;

    let none_header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = B64.encode(dev_claims().to_string());
    refused(&app, &format!("{none_header}.{payload}."), 401, "alg none").await;
    let none_upper = B64.encode(r#"{"alg":"NONE","typ":"JWT"}"#);
    refused(
        &app,
        &format!("{none_upper}.{payload}.{sig}"),
        401,
        "alg NONE",
    )
    .await;

    refused(
        &app,
        &hs256(&dev_claims(), b"another-key-that-is-long-enough-as-well!!"),
        401,
        "wrong key",
    )
    .await;
    let mut expired = dev_claims();
    expired["exp"] = json!(now() - 3600);
    refused(&app, &hs256(&expired, key), 401, "expired").await;
    let mut early = dev_claims();
    early["nbf"] = json!(now() + 3600);
    refused(&app, &hs256(&early, key), 401, "not yet valid").await;
    refused(
        &app,
        &hs256(&claims(Some("alice"), ISSUER, "someone-else"), key),
        401,
        "wrong audience",
    )
    .await;
    refused(
        &app,
        &hs256(
            &claims(Some("alice"), "https://evil.example", AUDIENCE),
            key,
        ),
        401,
        "wrong issuer",
    )
    .await;
    let mut no_exp = dev_claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(&app, &hs256(&no_exp, key), 401, "no exp").await;
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &dev_claims(),
        &EncodingKey::from_secret(key),
    )
    .unwrap();
    refused(&app, &hs512, 401, "unexpected algorithm").await;
    refused(&app, "not.a.token", 401, "garbage").await;

    refused(
        &app,
        &hs256(&claims(None, ISSUER, AUDIENCE), key),
        403,
        "no subject",
    )
    .await;
    refused(
        &app,
        &hs256(&claims(Some(""), ISSUER, AUDIENCE), key),
        403,
        "empty subject",
    )
    .await;

    let res = app
        .get("/api/orders")
        .header(
            "Authorization",
            format!("Basic {}", app.token("alice").await),
        )
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
}

/// A throwaway OIDC issuer: discovery document plus a JWKS that the test can rotate, count the
/// fetches of, and make hang (an outage that times requests out).
struct Issuer {
    url: String,
    jwks: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
    discoveries: Arc<AtomicUsize>,
    hang: Arc<AtomicBool>,
}

async fn spawn_issuer() -> Issuer {
    let jwks = Arc::new(RwLock::new(json!({ "keys": [] })));
    let (fetches, hang) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/keys") });
    let (served, counted, hung) = (Arc::clone(&jwks), Arc::clone(&fetches), Arc::clone(&hang));
    let (down, discoveries) = (Arc::clone(&hang), Arc::new(AtomicUsize::new(0)));
    let discovered = Arc::clone(&discoveries);
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move {
                discovered.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                Json(discovery)
            }),
        )
        .route(
            "/keys",
            get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                if hung.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                Json(served.read().unwrap().clone())
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Issuer {
        url,
        jwks,
        fetches,
        discoveries,
        hang,
    }
}

struct RsaKey {
    encoding: EncodingKey,
    public_pem: String,
    jwk: Value,
}

/// RSA key generation is slow in debug builds, so the suite makes its keys once.
fn rsa_keys() -> &'static [RsaKey; 2] {
    static KEYS: OnceLock<[RsaKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [rsa_key("k1"), rsa_key("k2")])
}

fn rsa_key(kid: &str) -> RsaKey {
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
    let public = private.to_public_key();
    RsaKey {
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
        jwk: json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be()) }),
    }
}

fn signed(alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn oidc_mode_verifies_rs256_and_es256_from_the_issuers_jwks() {
    let issuer = spawn_issuer().await;
    let [k1, k2] = rsa_keys();
    let ec = p256::SecretKey::random(&mut rand_core::OsRng);
    let ec_point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&ec.public_key(), false);
    let ec_jwk = json!({ "kty": "EC", "kid": "e1", "crv": "P-256", "alg": "ES256",
        "x": B64.encode(ec_point.x().unwrap()), "y": B64.encode(ec_point.y().unwrap()) });
    let ec_key = EncodingKey::from_ec_pem(
        ec.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    *issuer.jwks.write().unwrap() = json!({ "keys": [k1.jwk, ec_jwk] });

    let app = TestApp::spawn_with(&[
        ("AUTH_MODE", "oidc"),
        ("JWT_ISSUER", &issuer.url),
        ("JWT_AUDIENCE", "api://orders"),
        ("JWKS_MIN_REFRESH_SECS", "0"),
    ])
    .await;
    let good = claims(Some("alice"), &issuer.url, "api://orders");
    assert_eq!(
        status_with(&app, &signed(Algorithm::RS256, "k1", &good, &k1.encoding)).await,
        200
    );
    assert_eq!(
        status_with(&app, &signed(Algorithm::ES256, "e1", &good, &ec_key)).await,
        200
    );

    // Key confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let confused = signed(
        Algorithm::HS256,
        "k1",
        &good,
        &EncodingKey::from_secret(k1.public_pem.as_bytes()),
    );
    refused(&app, &confused, 401, "HS256 with the public key").await;
    // A key the issuer never published, under a published kid.
    refused(
        &app,
        &signed(Algorithm::RS256, "k1", &good, &k2.encoding),
        401,
        "foreign key",
    )
    .await;
    // An EC token claiming the RSA key's kid.
    refused(
        &app,
        &signed(Algorithm::ES256, "k1", &good, &ec_key),
        401,
        "kid of another key type",
    )
    .await;
    refused(
        &app,
        &signed(
            Algorithm::RS256,
            "k1",
            &claims(Some("alice"), &issuer.url, "api://other"),
            &k1.encoding,
        ),
        401,
        "audience",
    )
    .await;
    refused(
        &app,
        &signed(
            Algorithm::RS256,
            "k1",
            &claims(Some("alice"), "https://other", "api://orders"),
            &k1.encoding,
        ),
        401,
        "issuer",
    )
    .await;
    refused(
        &app,
        &signed(
            Algorithm::RS256,
            "k1",
            &claims(None, &issuer.url, "api://orders"),
            &k1.encoding,
        ),
        403,
        "no sub",
    )
    .await;

    // Rotation: the issuer publishes k2 and retires k1.
    *issuer.jwks.write().unwrap() = json!({ "keys": [k2.jwk] });
    assert_eq!(
        status_with(&app, &signed(Algorithm::RS256, "k2", &good, &k2.encoding)).await,
        200
    );
    refused(
        &app,
        &signed(Algorithm::RS256, "k1", &good, &k1.encoding),
        401,
        "retired key",
    )
    .await;

    // No dev tokens outside dev mode.
    problem(
        app.post("/dev/token")
            .json(&json!({ "userId": "alice" }))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_503_not_a_401() {
    let app =
        TestApp::spawn_with(&[("AUTH_MODE", "oidc"), ("JWT_ISSUER", "http://127.0.0.1:9")]).await;
    let [k1, _] = rsa_keys();
    let token = signed(
        Algorithm::RS256,
        "k1",
        &claims(Some("a"), "http://127.0.0.1:9", AUDIENCE),
        &k1.encoding,
    );
    let res = app
        .get("/api/orders")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 503).await;
}

/// A token for user "a" from `issuer`, signed with k1 and naming key `kid`.
fn issued(issuer: &Issuer, kid: &str) -> String {
    let [k1, _] = rsa_keys();
    let claims = claims(Some("a"), &issuer.url, "api://orders");
    signed(Algorithm::RS256, kid, &claims, &k1.encoding)
}

async fn oidc_app(issuer: &Issuer, min_refresh_secs: &str) -> TestApp {
    TestApp::spawn_with(&[
        ("AUTH_MODE", "oidc"),
        ("JWT_ISSUER", &issuer.url),
        ("JWT_AUDIENCE", "api://orders"),
        ("JWKS_MIN_REFRESH_SECS", min_refresh_secs),
    ])
    .await
}

/// `n` concurrent `GET /api/orders` with `token`: their statuses, and how long the slowest took.
async fn concurrently(app: &TestApp, token: &str, n: usize) -> (Vec<u16>, std::time::Duration) {
    let started = std::time::Instant::now();
    let statuses = futures::future::join_all((0..n).map(|_| status_with(app, token))).await;
    (statuses, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_issuer_down_cached_keys_serve_without_waiting_for_it() {
    let issuer = spawn_issuer().await;
    let [k1, _] = rsa_keys();
    *issuer.jwks.write().unwrap() = json!({ "keys": [k1.jwk] });
    let app = oidc_app(&issuer, "1").await;
    let good = issued(&issuer, "k1");
    assert_eq!(status_with(&app, &good).await, 200);

    // The issuer hangs; a token with an unknown kid starts a fetch that takes the client's 5 s
    // timeout. Known-kid validations meanwhile must not queue behind it.
    issuer.hang.store(true, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let rotated = issued(&issuer, "k9");
    let stuck = tokio::spawn({
        let app_url = app.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{app_url}/api/orders"))
                .bearer_auth(rotated)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // Wait until its fetch is in flight (the issuer saw a second discovery request).
    while issuer.discoveries.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (statuses, slowest) = concurrently(&app, &good, 200).await;
    println!("200 validations with the issuer down and a fetch in flight: slowest {slowest:?}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // All of them answered while the fetch was still hanging: none waited for it.
    assert!(
        !stuck.is_finished(),
        "the fetch ended before the validations did"
    );
    // The unknown kid is refused once the fetch times out: not a key we know.
    assert_eq!(stuck.await.unwrap().unwrap(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_issuer_down_and_no_keys_requests_fail_fast_with_503() {
    let issuer = spawn_issuer().await;
    issuer.hang.store(true, Ordering::SeqCst);
    let app = oidc_app(&issuer, "60").await;
    let token = issued(&issuer, "k1");
    // Twenty at once share the one fetch (one 5 s timeout), not twenty of them in turn.
    let (statuses, slowest) = concurrently(&app, &token, 20).await;
    println!("20 validations, issuer down, no keys: slowest {slowest:?}");
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        1,
        "one fetch for all twenty"
    );
    // Within the refresh interval the next ones fail at once, without a fetch.
    let (statuses, slowest) = concurrently(&app, &token, 20).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert!(slowest < std::time::Duration::from_secs(5), "{slowest:?}");
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        1,
        "no fetch within the interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_storm_fetches_at_most_once_per_interval() {
    let issuer = spawn_issuer().await;
    let [k1, _] = rsa_keys();
    *issuer.jwks.write().unwrap() = json!({ "keys": [k1.jwk] });
    let app = oidc_app(&issuer, "60").await;
    let good = issued(&issuer, "k1");
    assert_eq!(status_with(&app, &good).await, 200);
    let fetched = issuer.fetches.load(Ordering::SeqCst);
    let storm = (0..100).map(|n| {
        let token = issued(&issuer, &format!("made-up-{n}"));
        let app = &app;
        async move { status_with(app, &token).await }
    });
    let statuses = futures::future::join_all(storm).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // The first fetch was under a second ago: the storm causes none.
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), fetched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_waited_for_a_fetch_do_not_fetch_again_even_with_no_interval() {
    let issuer = spawn_issuer().await;
    issuer.hang.store(true, Ordering::SeqCst);
    let app = oidc_app(&issuer, "0").await;
    let token = issued(&issuer, "k1");
    let (statuses, _) = concurrently(&app, &token, 10).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        1,
        "one fetch for all ten"
    );
}
