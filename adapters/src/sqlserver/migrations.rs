//! Versioned schema migrations in T-SQL, applied in order at start-up inside the caller's
//! transaction and recorded in `schema_migrations`. The same tables as the SQLite migrations.

use super::pool::Client;
use super::{DbError, get};

/// (version, name, T-SQL). Append only: an applied migration is never edited.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "orders schema",
        r#"
    CREATE TABLE customers (
        id           BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT pk_customers PRIMARY KEY,
        external_id  NVARCHAR(256) NOT NULL,
        -- The unique key is the id's bytes: '=' on NVARCHAR ignores trailing spaces and, under the
        -- usual collations, case, while user ids (JWT subjects) are exact strings.
        external_key AS CAST(external_id AS VARBINARY(512)) PERSISTED NOT NULL
                     CONSTRAINT uq_customers_external_key UNIQUE,
        created_at   DATETIME2(3) NOT NULL
    );
    CREATE TABLE products (
        id               BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT pk_products PRIMARY KEY,
        product_id       NVARCHAR(32) COLLATE Latin1_General_100_BIN2 NOT NULL
                         CONSTRAINT uq_products_product_id UNIQUE,
        name             NVARCHAR(MAX) NOT NULL,
        category         NVARCHAR(MAX) NOT NULL,
        vendor           NVARCHAR(MAX) NOT NULL,
        image_url        NVARCHAR(MAX) NOT NULL,
        price_cents      BIGINT NOT NULL CONSTRAINT ck_products_price CHECK (price_cents >= 0),
        discount_percent TINYINT NOT NULL
                         CONSTRAINT ck_products_discount CHECK (discount_percent BETWEEN 0 AND 100),
        billing_period   NVARCHAR(20) NOT NULL,
        is_subscription  BIT NOT NULL,
        is_active        BIT NOT NULL
    );
    CREATE TABLE orders (
        id             BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT pk_orders PRIMARY KEY,
        correlation_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT uq_orders_correlation_id UNIQUE,
        customer_id    BIGINT NOT NULL CONSTRAINT fk_orders_customer REFERENCES customers (id),
        status         NVARCHAR(20) NOT NULL,
        total_cents    BIGINT NOT NULL,
        created_at     DATETIME2(3) NOT NULL,
        completed_at   DATETIME2(3) NULL,
        is_deleted     BIT NOT NULL CONSTRAINT df_orders_is_deleted DEFAULT 0
    );
    CREATE INDEX ix_orders_customer ON orders (customer_id, is_deleted, id DESC);
    CREATE TABLE order_items (
        id               BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT pk_order_items PRIMARY KEY,
        order_id         BIGINT NOT NULL CONSTRAINT fk_order_items_order REFERENCES orders (id),
        product_id       BIGINT NOT NULL CONSTRAINT fk_order_items_product REFERENCES products (id),
        product_name     NVARCHAR(MAX) NOT NULL,
        unit_price_cents BIGINT NOT NULL CONSTRAINT ck_order_items_price CHECK (unit_price_cents >= 0),
        quantity         BIGINT NOT NULL CONSTRAINT ck_order_items_quantity CHECK (quantity > 0)
    );
    CREATE INDEX ix_order_items_order ON order_items (order_id);
    "#,
    ),
    (
        2,
        "failed orders",
        r#"
    CREATE TABLE failed_orders (
        correlation_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT pk_failed_orders PRIMARY KEY,
        user_id        NVARCHAR(256) NOT NULL,
        user_key       AS CAST(user_id AS VARBINARY(512)) PERSISTED NOT NULL,
        order_json     NVARCHAR(MAX) NOT NULL,
        reason         NVARCHAR(MAX) NOT NULL,
        failed_at      DATETIME2(3) NOT NULL
    );
    CREATE INDEX ix_failed_orders_failed_at ON failed_orders (failed_at);
    "#,
    ),
];

/// Two instances starting at once queue on this transaction-owned lock; the second then finds
/// the schema current. Held until the caller commits.
const LOCK: &str = "DECLARE @granted INT;
    EXEC @granted = sp_getapplock @Resource = N'orders:schema-migrations', @LockMode = N'Exclusive',
        @LockOwner = N'Transaction', @LockTimeout = 60000;
    IF @granted < 0 THROW 50000, N'could not take the schema migration lock', 1;";

const CREATE_LEDGER: &str = "IF OBJECT_ID(N'schema_migrations', N'U') IS NULL
    CREATE TABLE schema_migrations (
        version    INT NOT NULL CONSTRAINT pk_schema_migrations PRIMARY KEY,
        name       NVARCHAR(200) NOT NULL,
        applied_at DATETIME2(3) NOT NULL
    );";

/// Applies pending migrations; the caller holds the transaction (DDL is transactional here).
pub(super) async fn migrate(client: &mut Client) -> Result<(), DbError> {
    client.execute(LOCK, &[]).await?;
    client.execute(CREATE_LEDGER, &[]).await?;
    let current: i32 = match client
        .query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .into_row()
        .await?
    {
        Some(row) => get(&row, 0)?,
        None => 0,
    };
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tracing::info!(version, name, "applying SQL Server migration");
        client.execute(*sql, &[]).await?;
        client
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@P1, @P2, SYSUTCDATETIME())",
                &[version, name],
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i32 + 1);
        }
    }

    #[test]
    fn migrations_are_plain_batches() {
        // sp_executesql runs each one: a `GO` separator would be a syntax error there.
        for (_, _, sql) in MIGRATIONS {
            assert!(!sql.lines().any(|l| l.trim().eq_ignore_ascii_case("go")));
        }
    }
}
