//! `OrderStore` on SQL Server.

use super::pool::Client;
use super::{DbError, SqlServerStore, backend, finish_transaction, get, invalid, run_batch};
use chrono::{DateTime, SubsecRound, Utc};
use orders_core::events::{IntegrationEvent, OrderAccepted};
use orders_core::order::{
    FailedOrder, FailureRecorded, NewOrder, Order, OrderLine, SavedOrder, order_total,
};
use orders_core::paging::{Page, PageRequest};
use orders_core::ports::{BackendError, OrderStore};
use orders_core::{CorrelationId, Money, OrderId, OrderRef, OrderStatus, ProductId, UserId};
use tiberius::{Query, Row};

const ORDER_COLUMNS: &str =
    "o.id, o.correlation_id, c.external_id, o.status, o.total_cents, o.created_at, o.completed_at";
const ORDER_FROM: &str = "FROM orders o JOIN customers c ON c.id = o.customer_id";

/// Matches the customer whose user id is parameter `@P{param}`, byte for byte (see migration 1).
fn owner_is(param: usize) -> String {
    format!("c.external_key = CAST(@P{param} AS VARBINARY(512))")
}

/// Unique-key violations (2627 constraint, 2601 index) mean a concurrent save of the same
/// correlation id, or of the same new customer, committed first; 1205 is a deadlock victim.
/// Either way the transaction was rolled back and a retry finds the committed row.
const RETRY_ON: [u32; 3] = [2627, 2601, 1205];
const SAVE_ATTEMPTS: usize = 3;

/// DATETIME2(3) would round to the millisecond; truncate first, as SQLite's text form does.
fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

/// An order row without its lines.
fn order_from_row(row: &Row) -> Result<Order, DbError> {
    let owner: &str = get(row, 2)?;
    let status: &str = get(row, 3)?;
    Ok(Order {
        order_id: OrderId::new(get(row, 0)?),
        correlation_id: CorrelationId::from_uuid(get(row, 1)?),
        user_id: UserId::parse(owner).map_err(|e| invalid("user id", e))?,
        status: status.parse().map_err(|e| invalid("status", e))?,
        total: Money::from_cents(get(row, 4)?),
        created_at: get(row, 5)?,
        completed_at: row.try_get(6)?,
        lines: Vec::new(),
    })
}

/// Loads the lines of all `orders` in one round trip, each order's in item id order.
async fn load_lines(client: &mut Client, orders: &mut [Order]) -> Result<(), DbError> {
    if orders.is_empty() {
        return Ok(());
    }
    let mut query = Query::new(format!(
        "SELECT i.order_id, p.product_id, i.product_name, i.unit_price_cents, i.quantity,
                p.billing_period
         FROM order_items i JOIN products p ON p.id = i.product_id
         WHERE i.order_id IN ({}) ORDER BY i.order_id, i.id",
        Query::placeholders(1, orders.len())
    ));
    for order in orders.iter() {
        query.bind(order.order_id.get());
    }
    for row in query.query(client).await?.into_first_result().await? {
        let order_id: i64 = get(&row, 0)?;
        let product: &str = get(&row, 1)?;
        let quantity: i64 = get(&row, 4)?;
        let period: &str = get(&row, 5)?;
        let line = OrderLine {
            product_id: ProductId::parse(product).map_err(|e| invalid("product id", e))?,
            product_name: get::<&str>(&row, 2)?.to_owned(),
            unit_price: Money::from_cents(get(&row, 3)?),
            quantity: u32::try_from(quantity).map_err(|e| invalid("quantity", e))?,
            billing_period: period.parse().map_err(|e| invalid("billing period", e))?,
        };
        if let Some(order) = orders.iter_mut().find(|o| o.order_id.get() == order_id) {
            order.lines.push(line);
        }
    }
    Ok(())
}

async fn customer_id(
    client: &mut Client,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let insert = format!(
        "INSERT INTO customers (external_id, created_at) SELECT @P1, @P2
         WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE {})",
        owner_is(1)
    );
    client.execute(insert, &[&user.as_str(), &now]).await?;
    let select = format!("SELECT c.id FROM customers c WHERE {}", owner_is(1));
    let row = client
        .query(select, &[&user.as_str()])
        .await?
        .into_row()
        .await?;
    get(
        &row.ok_or_else(|| DbError::Data(format!("customer {user} vanished")))?,
        0,
    )
}

/// One attempt, inside the caller's transaction.
async fn insert_order(client: &mut Client, order: &NewOrder) -> Result<SavedOrder, DbError> {
    let cid = order.correlation_id.as_uuid();
    let existing = client
        .query("SELECT id FROM orders WHERE correlation_id = @P1", &[&cid])
        .await?
        .into_row()
        .await?;
    // A retry of a failed order that now succeeds is no longer failed.
    client
        .execute(
            "DELETE FROM failed_orders WHERE correlation_id = @P1",
            &[&cid],
        )
        .await?;
    if let Some(row) = existing {
        return Ok(SavedOrder {
            order_id: OrderId::new(get(&row, 0)?),
            created: false,
        });
    }
    let now = millis(Utc::now());
    let customer = customer_id(client, &order.user_id, now).await?;
    let row = client
        .query(
            "INSERT INTO orders (correlation_id, customer_id, status, total_cents, created_at, completed_at)
             OUTPUT INSERTED.id VALUES (@P1, @P2, @P3, @P4, @P5, @P6)",
            &[
                &cid,
                &customer,
                &OrderStatus::Completed.as_str(),
                &order_total(&order.lines).cents(),
                &millis(order.accepted_at),
                &now,
            ],
        )
        .await?
        .into_row()
        .await?;
    let order_id: i64 = get(
        &row.ok_or_else(|| DbError::Data("INSERT returned no id".into()))?,
        0,
    )?;
    for line in &order.lines {
        let inserted = client
            .execute(
                "INSERT INTO order_items (order_id, product_id, product_name, unit_price_cents, quantity)
                 SELECT @P1, id, @P3, @P4, @P5 FROM products WHERE product_id = @P2",
                &[
                    &order_id,
                    &line.product_id.as_str(),
                    &line.product_name.as_str(),
                    &line.unit_price.cents(),
                    &i64::from(line.quantity),
                ],
            )
            .await?
            .total();
        if inserted != 1 {
            // Rolls back: the message is retried and, if the product never appears, dead-lettered.
            return Err(DbError::Data(format!(
                "product {} is not in the catalog",
                line.product_id
            )));
        }
    }
    Ok(SavedOrder {
        order_id: OrderId::new(order_id),
        created: true,
    })
}

/// Optimistic: the existence check takes no lock; the unique constraint on `correlation_id`
/// decides a race, and the loser rolls back and retries into the `created: false` branch.
async fn save(client: &mut Client, order: &NewOrder) -> Result<SavedOrder, DbError> {
    let mut attempt = 1;
    loop {
        client.begin_transaction().await?;
        let result = insert_order(client, order).await;
        match finish_transaction(client, result).await {
            Err(err)
                if attempt < SAVE_ATTEMPTS && err.code().is_some_and(|c| RETRY_ON.contains(&c)) =>
            {
                tracing::debug!(attempt, error = %err, "retrying a concurrent order save");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn find(
    client: &mut Client,
    owner: &UserId,
    order: OrderRef,
) -> Result<Option<Order>, DbError> {
    let by = match order {
        OrderRef::Id(_) => "o.id",
        OrderRef::Correlation(_) => "o.correlation_id",
    };
    let mut query = Query::new(format!(
        "SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE {by} = @P1 AND {} AND o.is_deleted = 0",
        owner_is(2)
    ));
    match order {
        OrderRef::Id(id) => query.bind(id.get()),
        OrderRef::Correlation(cid) => query.bind(cid.as_uuid()),
    }
    query.bind(owner.as_str());
    let Some(row) = query.query(client).await?.into_row().await? else {
        return Ok(None);
    };
    let mut found = [order_from_row(&row)?];
    load_lines(client, &mut found).await?;
    let [order] = found;
    Ok(Some(order))
}

async fn list(
    client: &mut Client,
    owner: &UserId,
    page: PageRequest,
) -> Result<Page<Order>, DbError> {
    let filter = format!("{ORDER_FROM} WHERE {} AND o.is_deleted = 0", owner_is(1));
    let count = client
        .query(format!("SELECT COUNT_BIG(*) {filter}"), &[&owner.as_str()])
        .await?
        .into_row()
        .await?;
    let total: i64 = count.map_or(Ok(0), |row| get(&row, 0))?;
    let mut orders = Vec::new();
    // FETCH NEXT 0 ROWS is an error in T-SQL, while SQLite's LIMIT 0 is just empty.
    if page.size > 0 {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} {filter} ORDER BY o.id DESC OFFSET @P2 ROWS FETCH NEXT @P3 ROWS ONLY"
        );
        let (offset, size) = (i64::from(page.offset), i64::from(page.size));
        let rows = client
            .query(sql, &[&owner.as_str(), &offset, &size])
            .await?
            .into_first_result()
            .await?;
        orders = rows.iter().map(order_from_row).collect::<Result<_, _>>()?;
        load_lines(client, &mut orders).await?;
    }
    Ok(Page {
        offset: page.offset,
        size: page.size,
        total: u64::try_from(total).map_err(|e| invalid("count", e))?,
        items: orders,
    })
}

async fn soft_delete(client: &mut Client, owner: &UserId, order: OrderId) -> Result<bool, DbError> {
    let sql = format!(
        "UPDATE orders SET is_deleted = 1
         WHERE id = @P1 AND is_deleted = 0
           AND customer_id = (SELECT c.id FROM customers c WHERE {})",
        owner_is(2)
    );
    let changed = client
        .execute(sql, &[&order.get(), &owner.as_str()])
        .await?
        .total();
    Ok(changed == 1)
}

async fn owner(client: &mut Client, cid: CorrelationId) -> Result<Option<UserId>, DbError> {
    let row = client
        .query(
            format!("SELECT c.external_id {ORDER_FROM} WHERE o.correlation_id = @P1"),
            &[&cid.as_uuid()],
        )
        .await?
        .into_row()
        .await?;
    row.map(|row| {
        let owner: &str = get(&row, 0)?;
        UserId::parse(owner).map_err(|e| invalid("user id", e))
    })
    .transpose()
}

/// Records a failure in one transaction, unless the order is persisted; MERGE keeps one row
/// per correlation id with the latest reason.
async fn record(client: &mut Client, failed: &FailedOrder) -> Result<FailureRecorded, DbError> {
    let cid = failed.order.correlation_id.as_uuid();
    client.begin_transaction().await?;
    let result = async {
        let persisted = client
            .query("SELECT id FROM orders WHERE correlation_id = @P1", &[&cid])
            .await?
            .into_row()
            .await?;
        if let Some(row) = persisted {
            return Ok(FailureRecorded::AlreadyPersisted(OrderId::new(get(&row, 0)?)));
        }
        client
            .execute(
                "MERGE failed_orders WITH (HOLDLOCK) AS f
                 USING (SELECT @P1 AS correlation_id) AS n ON f.correlation_id = n.correlation_id
                 WHEN MATCHED THEN UPDATE SET reason = @P4, failed_at = @P5
                 WHEN NOT MATCHED THEN INSERT (correlation_id, user_id, order_json, reason, failed_at)
                     VALUES (@P1, @P2, @P3, @P4, @P5);",
                &[
                    &cid,
                    &failed.order.user_id.as_str(),
                    &failed.order.to_json(),
                    &failed.reason.as_str(),
                    &millis(failed.failed_at),
                ],
            )
            .await?;
        Ok(FailureRecorded::Failed)
    }
    .await;
    finish_transaction(client, result).await
}

fn failure_from_row(row: &Row) -> Result<FailedOrder, DbError> {
    let json: &str = get(row, 0)?;
    let reason: &str = get(row, 1)?;
    let failed_at: chrono::NaiveDateTime = get(row, 2)?;
    Ok(FailedOrder {
        order: OrderAccepted::from_json(json.as_bytes()).map_err(|e| invalid("failed order", e))?,
        reason: reason.to_owned(),
        failed_at: failed_at.and_utc(),
    })
}

const FAILURE_COLUMNS: &str = "order_json, reason, failed_at";

async fn find_failed(
    client: &mut Client,
    owner: &UserId,
    cid: CorrelationId,
) -> Result<Option<FailedOrder>, DbError> {
    let row = client
        .query(
            format!(
                "SELECT {FAILURE_COLUMNS} FROM failed_orders
                 WHERE correlation_id = @P1 AND user_key = CAST(@P2 AS VARBINARY(512))"
            ),
            &[&cid.as_uuid(), &owner.as_str()],
        )
        .await?
        .into_row()
        .await?;
    row.as_ref().map(failure_from_row).transpose()
}

async fn list_failed(client: &mut Client, limit: usize) -> Result<Vec<FailedOrder>, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    client
        .query(
            format!("SELECT TOP (@P1) {FAILURE_COLUMNS} FROM failed_orders ORDER BY failed_at"),
            &[&limit],
        )
        .await?
        .into_first_result()
        .await?
        .iter()
        .map(failure_from_row)
        .collect()
}

#[async_trait::async_trait]
impl OrderStore for SqlServerStore {
    async fn record_failure(&self, failed: &FailedOrder) -> Result<FailureRecorded, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = record(conn.client(), failed).await;
        conn.finish(result)
    }

    async fn find_failure(
        &self,
        owner: &UserId,
        cid: CorrelationId,
    ) -> Result<Option<FailedOrder>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = find_failed(conn.client(), owner, cid).await;
        conn.finish(result)
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailedOrder>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = list_failed(conn.client(), limit).await;
        conn.finish(result)
    }

    async fn save_order(&self, order: &NewOrder) -> Result<SavedOrder, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = save(conn.client(), order).await;
        conn.finish(result)
    }

    async fn find_order(
        &self,
        owner: &UserId,
        order: OrderRef,
    ) -> Result<Option<Order>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = find(conn.client(), owner, order).await;
        conn.finish(result)
    }

    async fn list_orders(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = list(conn.client(), owner, page).await;
        conn.finish(result)
    }

    async fn delete_order(&self, owner: &UserId, order: OrderId) -> Result<bool, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = soft_delete(conn.client(), owner, order).await;
        conn.finish(result)
    }

    async fn owner_of(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = owner(conn.client(), cid).await;
        conn.finish(result)
    }

    async fn ping(&self) -> Result<(), BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = run_batch(conn.client(), "SELECT 1").await;
        conn.finish(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_truncate_to_milliseconds() {
        let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::microseconds(999_999);
        assert_eq!(millis(at).timestamp_subsec_millis(), 999);
        assert_eq!(millis(at).timestamp_subsec_nanos(), 999_000_000);
    }

    #[test]
    fn owners_compare_as_bytes() {
        assert_eq!(owner_is(2), "c.external_key = CAST(@P2 AS VARBINARY(512))");
    }
}
