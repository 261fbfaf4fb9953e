//! `GET /api/products` and `GET /api/products/{productId}`: served from the in-memory catalog
//! (the one bundled with the binary until SQL's is loaded).

use super::dto::{PageDto, ProductDto};
use crate::app::AppState;
use crate::extract::{PathText, QueryParams};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use orders_core::ProductId;
use orders_core::catalog::ProductQuery;

pub async fn list(
    State(app): State<AppState>,
    query: QueryParams,
) -> Result<Json<PageDto<ProductDto>>, ApiError> {
    let page = query.page()?;
    let filter = ProductQuery {
        text: query.text("q"),
        vendor: query.text("vendor"),
        category: query.text("category"),
    };
    let found = app.catalog.current().search(&filter, page);
    Ok(Json(PageDto::from_page(found, |p| ProductDto::from(&p))))
}

pub async fn get(
    State(app): State<AppState>,
    PathText(product_id): PathText,
) -> Result<Json<ProductDto>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no product {product_id}"));
    let id = ProductId::parse(&product_id).map_err(|_| not_found())?;
    let catalog = app.catalog.current();
    let product = catalog.get_active(&id).ok_or_else(not_found)?;
    Ok(Json(ProductDto::from(product)))
}
