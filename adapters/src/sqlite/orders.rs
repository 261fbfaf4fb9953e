//! `OrderStore` on SQLite.

use super::SqliteStore;
use chrono::{DateTime, SecondsFormat, Utc};
use orders_core::events::{IntegrationEvent, OrderAccepted};
use orders_core::order::{
    FailedOrder, FailureRecorded, NewOrder, Order, OrderLine, SavedOrder, order_total,
};
use orders_core::paging::{Page, PageRequest};
use orders_core::ports::{BackendError, OrderStore};
use orders_core::{CorrelationId, Money, OrderId, OrderRef, OrderStatus, ProductId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

const ORDER_COLUMNS: &str =
    "o.id, o.correlation_id, c.external_id, o.status, o.total_cents, o.created_at, o.completed_at";

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn conversion(index: usize, err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        err.to_string().into(),
    )
}

fn parse_time(index: usize, raw: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| conversion(index, e))
}

/// An order row without its lines.
fn order_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let cid: String = row.get(1)?;
    let owner: String = row.get(2)?;
    let status: String = row.get(3)?;
    Ok(Order {
        order_id: OrderId::new(row.get(0)?),
        correlation_id: cid.parse().map_err(|e| conversion(1, e))?,
        user_id: UserId::parse(owner).map_err(|e| conversion(2, e))?,
        status: status.parse().map_err(|e| conversion(3, e))?,
        total: Money::from_cents(row.get(4)?),
        created_at: parse_time(5, row.get(5)?)?,
        completed_at: row
            .get::<_, Option<String>>(6)?
            .map(|t| parse_time(6, t))
            .transpose()?,
        lines: Vec::new(),
    })
}

fn load_lines(conn: &Connection, order: &mut Order) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.product_id, i.product_name, i.unit_price_cents, i.quantity, p.billing_period
         FROM order_items i JOIN products p ON p.id = i.product_id
         WHERE i.order_id = ?1 ORDER BY i.id",
    )?;
    order.lines = stmt
        .query_map([order.order_id.get()], |row| {
            let id: String = row.get(0)?;
            let period: String = row.get(4)?;
            Ok(OrderLine {
                product_id: ProductId::parse(&id).map_err(|e| conversion(0, e))?,
                product_name: row.get(1)?,
                unit_price: Money::from_cents(row.get(2)?),
                quantity: row.get(3)?,
                billing_period: period.parse().map_err(|e| conversion(4, e))?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}

fn customer_id(tx: &Connection, user: &UserId, now: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO customers (external_id, created_at) VALUES (?1, ?2) ON CONFLICT (external_id) DO NOTHING",
    )?
    .execute(params![user.as_str(), now])?;
    tx.prepare_cached("SELECT id FROM customers WHERE external_id = ?1")?
        .query_row([user.as_str()], |r| r.get(0))
}

fn insert_order(conn: &mut Connection, order: &NewOrder) -> rusqlite::Result<SavedOrder> {
    let tx = conn.savepoint()?;
    let cid = order.correlation_id.to_string();
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM orders WHERE correlation_id = ?1")?
        .query_row([&cid], |r| r.get(0))
        .optional()?;
    // A retry of a failed order that now succeeds is no longer failed.
    tx.prepare_cached("DELETE FROM failed_orders WHERE correlation_id = ?1")?
        .execute([&cid])?;
    if let Some(id) = existing {
        tx.commit()?;
        return Ok(SavedOrder {
            order_id: OrderId::new(id),
            created: false,
        });
    }
    let now = timestamp(Utc::now());
    let customer = customer_id(&tx, &order.user_id, &now)?;
    tx.prepare_cached(
        "INSERT INTO orders (correlation_id, customer_id, status, total_cents, created_at, completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        cid,
        customer,
        OrderStatus::Completed.as_str(),
        order_total(&order.lines).cents(),
        timestamp(order.accepted_at),
        now
    ])?;
    let order_id = tx.last_insert_rowid();
    {
        let mut item = tx.prepare_cached(
            "INSERT INTO order_items (order_id, product_id, product_name, unit_price_cents, quantity)
             SELECT ?1, id, ?3, ?4, ?5 FROM products WHERE product_id = ?2",
        )?;
        for line in &order.lines {
            let inserted = item.execute(params![
                order_id,
                line.product_id.as_str(),
                line.product_name,
                line.unit_price.cents(),
                line.quantity
            ])?;
            if inserted != 1 {
                // Rolls back: the message is retried and, if the product never appears, dead-lettered.
                return Err(conversion(
                    0,
                    format!("product {} is not in the catalog", line.product_id),
                ));
            }
        }
    }
    tx.commit()?;
    Ok(SavedOrder {
        order_id: OrderId::new(order_id),
        created: true,
    })
}

fn record_failure(
    conn: &mut Connection,
    failed: &FailedOrder,
) -> rusqlite::Result<FailureRecorded> {
    let tx = conn.savepoint()?;
    let cid = failed.order.correlation_id.to_string();
    let persisted: Option<i64> = tx
        .query_row(
            "SELECT id FROM orders WHERE correlation_id = ?1",
            [&cid],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = persisted {
        return Ok(FailureRecorded::AlreadyPersisted(OrderId::new(id)));
    }
    tx.execute(
        "INSERT INTO failed_orders (correlation_id, user_id, order_json, reason, failed_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (correlation_id) DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at",
        params![
            cid,
            failed.order.user_id.as_str(),
            failed.order.to_json(),
            failed.reason,
            timestamp(failed.failed_at)
        ],
    )?;
    tx.commit()?;
    Ok(FailureRecorded::Failed)
}

fn failure_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FailedOrder> {
    let json: String = row.get(0)?;
    Ok(FailedOrder {
        order: OrderAccepted::from_json(json.as_bytes()).map_err(|e| conversion(0, e))?,
        reason: row.get(1)?,
        failed_at: parse_time(2, row.get(2)?)?,
    })
}

#[async_trait::async_trait]
impl OrderStore for SqliteStore {
    async fn record_failure(&self, failed: &FailedOrder) -> Result<FailureRecorded, BackendError> {
        let failed = failed.clone();
        self.with_conn(move |conn| record_failure(conn, &failed))
            .await
    }

    async fn find_failure(
        &self,
        owner: &UserId,
        cid: CorrelationId,
    ) -> Result<Option<FailedOrder>, BackendError> {
        let owner = owner.clone();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT order_json, reason, failed_at FROM failed_orders
                 WHERE correlation_id = ?1 AND user_id = ?2",
                params![cid.to_string(), owner.as_str()],
                failure_from_row,
            )
            .optional()
        })
        .await
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailedOrder>, BackendError> {
        self.with_conn(move |conn| {
            conn.prepare(
                "SELECT order_json, reason, failed_at FROM failed_orders ORDER BY failed_at LIMIT ?1",
            )?
            .query_map([limit as i64], failure_from_row)?
            .collect()
        })
        .await
    }

    async fn save_order(&self, order: &NewOrder) -> Result<SavedOrder, BackendError> {
        let order = order.clone();
        self.with_conn(move |conn| insert_order(conn, &order)).await
    }

    async fn find_order(
        &self,
        owner: &UserId,
        order: OrderRef,
    ) -> Result<Option<Order>, BackendError> {
        let owner = owner.clone();
        self.with_conn(move |conn| {
            let (by, key) = match order {
                OrderRef::Id(id) => ("o.id = ?1", id.get().to_string()),
                OrderRef::Correlation(cid) => ("o.correlation_id = ?1", cid.to_string()),
            };
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id
                 WHERE {by} AND c.external_id = ?2 AND o.is_deleted = 0"
            );
            let found = conn
                .query_row(&sql, params![key, owner.as_str()], order_from_row)
                .optional()?;
            found
                .map(|mut order| load_lines(conn, &mut order).map(|()| order))
                .transpose()
        })
        .await
    }

    async fn list_orders(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, BackendError> {
        let owner = owner.clone();
        self.with_conn(move |conn| {
            let filter = "FROM orders o JOIN customers c ON c.id = o.customer_id
                          WHERE c.external_id = ?1 AND o.is_deleted = 0";
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) {filter}"),
                [owner.as_str()],
                |r| r.get(0),
            )?;
            let sql =
                format!("SELECT {ORDER_COLUMNS} {filter} ORDER BY o.id DESC LIMIT ?2 OFFSET ?3");
            let mut orders = conn
                .prepare(&sql)?
                .query_map(
                    params![owner.as_str(), page.size, page.offset],
                    order_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for order in &mut orders {
                load_lines(conn, order)?;
            }
            Ok(Page {
                offset: page.offset,
                size: page.size,
                total: total as u64,
                items: orders,
            })
        })
        .await
    }

    async fn delete_order(&self, owner: &UserId, order: OrderId) -> Result<bool, BackendError> {
        let owner = owner.clone();
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE orders SET is_deleted = 1
                 WHERE id = ?1 AND is_deleted = 0
                   AND customer_id = (SELECT id FROM customers WHERE external_id = ?2)",
                params![order.get(), owner.as_str()],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn owner_of(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        self.with_conn(move |conn| {
            let owner: Option<String> = conn
                .query_row(
                    "SELECT c.external_id FROM orders o JOIN customers c ON c.id = o.customer_id
                     WHERE o.correlation_id = ?1",
                    [cid.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            owner
                .map(|o| UserId::parse(o).map_err(|e| conversion(0, e)))
                .transpose()
        })
        .await
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.with_conn(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}
