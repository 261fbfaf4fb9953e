use crate::helpers::{TestApp, problem};
use serde_json::Value;
use std::collections::HashSet;

async fn page(app: &TestApp, query: &str) -> Value {
    let res = app
        .get(&format!("/api/products?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn two_pages_show_all_145_products() {
    let app = TestApp::spawn().await;
    let first = page(&app, "size=100").await;
    let second = page(&app, "size=100&offset=100").await;
    assert_eq!(first["total"], 145);
    assert_eq!(first["items"].as_array().unwrap().len(), 100);
    assert_eq!(second["items"].as_array().unwrap().len(), 45);
    let ids: HashSet<_> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|p| p["productId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 145);
    let vendors: HashSet<_> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["vendor"].clone())
        .collect();
    assert!(vendors.len() >= 6);
}

#[tokio::test]
async fn products_have_the_documented_shape_with_exact_prices() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/products/az-104").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["productId"], "AZ-104");
    for field in [
        "name",
        "category",
        "vendor",
        "imageUrl",
        "price",
        "billingPeriod",
        "finalPrice",
    ] {
        assert!(p[field].is_string(), "{field} in {p}");
    }
    assert!(p["discount"].is_u64() && p["isSubscription"].is_boolean() && p["priceCents"].is_i64());
    let cents = p["priceCents"].as_i64().unwrap();
    assert_eq!(p["price"], format!("{}.{:02}", cents / 100, cents % 100));
}

#[tokio::test]
async fn search_and_filters_narrow_the_catalog() {
    let app = TestApp::spawn().await;
    let total = |v: Value| v["total"].as_u64().unwrap();
    let all = total(page(&app, "").await);
    let azure = page(&app, "q=azure&size=100").await;
    assert!(total(azure.clone()) > 0 && total(azure.clone()) < all);
    assert!(azure["items"].as_array().unwrap().iter().all(|p| {
        let text = format!(
            "{} {} {} {}",
            p["productId"], p["name"], p["vendor"], p["category"]
        )
        .to_lowercase();
        text.contains("azure")
    }));
    let aws = page(&app, "vendor=AWS&size=100").await;
    assert!(
        aws["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["vendor"] == "AWS")
    );
    assert!(total(aws) < all);
    let security = total(page(&app, "category=security").await);
    let ms_security = total(page(&app, "category=Security&vendor=microsoft").await);
    assert!(0 < ms_security && ms_security < security && security < all);
    assert_eq!(total(page(&app, "q=no-such-exam-anywhere").await), 0);
}

#[tokio::test]
async fn unknown_and_retired_products_are_not_found() {
    let app = TestApp::spawn().await;
    for id in ["NOPE-999", "AZ-300", "bad%20id", "%FF"] {
        let body = problem(
            app.get(&format!("/api/products/{id}"))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains("no product"));
    }
    let listed = page(&app, "q=AZ-300").await;
    assert_eq!(listed["total"], 0, "retired products are not listed");
}

#[tokio::test]
async fn bad_paging_is_a_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("size=0", "size"),
        ("size=101", "size"),
        ("size=ten", "size"),
        ("offset=-1", "offset"),
        ("offset=99999999999", "offset"),
    ] {
        let res = app
            .get(&format!("/api/products?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res, 400).await["field"], field, "{query}");
    }
}
