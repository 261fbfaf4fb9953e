//! One contract for every `OrderStore`: the same tests run on SQLite always, and on SQL Server
//! when asked for (they are `#[ignore]`d by default, since CI has no SQL Server):
//!
//!     SQLSERVER_TEST_CONNECTION_STRING='Server=tcp:localhost,1433;...' \
//!         cargo test -p orders-adapters --test store_contract -- --ignored
//! Each test uses its own users, so the suites can share a database and run in parallel.

use chrono::{SubsecRound, Utc};
use orders_adapters::sqlite::SqliteStore;
use orders_adapters::sqlserver::{SqlServerAuth, SqlServerConfig, SqlServerStore};
use orders_core::events::OrderAccepted;
use orders_core::order::{FailedOrder, FailureRecorded, NewOrder, OrderLine};
use orders_core::paging::PageRequest;
use orders_core::ports::{CatalogSource, ErrorKind, OrderStore};
use orders_core::product::BillingPeriod;
use orders_core::{CorrelationId, Money, OrderRef, OrderStatus, ProductId, UserId};
use std::sync::Arc;

struct Backend {
    store: Arc<dyn OrderStore>,
    catalog: Arc<dyn CatalogSource>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("orders.db"),
        orders_adapters::seed::products(),
    )
    .await
    .unwrap();
    Backend {
        store: Arc::new(store.clone()),
        catalog: Arc::new(store),
        _dir: Some(dir),
    }
}

async fn sqlserver() -> Backend {
    let connection_string = std::env::var("SQLSERVER_TEST_CONNECTION_STRING")
        .expect("set SQLSERVER_TEST_CONNECTION_STRING to run the contract on SQL Server");
    let config = SqlServerConfig {
        connection_string: orders_core::secret::Secret::new(connection_string),
        auth: SqlServerAuth::SqlLogin,
    };
    let store = SqlServerStore::connect(config, orders_adapters::seed::products())
        .await
        .unwrap();
    Backend {
        store: Arc::new(store.clone()),
        catalog: Arc::new(store),
        _dir: None,
    }
}

/// A user no other test uses.
fn user(name: &str) -> UserId {
    UserId::parse(format!("{name}-{}", CorrelationId::generate())).unwrap()
}

/// A line with its seeded product's billing period (one-time for a product not in the seed), as
/// intake prices it.
fn line(product: &str, cents: i64, quantity: u32) -> OrderLine {
    let product_id = ProductId::parse(product).unwrap();
    let billing_period = orders_adapters::seed::products()
        .into_iter()
        .find(|p| p.product_id == product_id)
        .map_or(BillingPeriod::OneTime, |p| p.billing_period);
    OrderLine {
        product_id,
        product_name: format!("{product} practice exams"),
        unit_price: Money::from_cents(cents),
        quantity,
        billing_period,
    }
}

fn new_order(owner: &UserId, lines: Vec<OrderLine>) -> NewOrder {
    NewOrder {
        correlation_id: CorrelationId::generate(),
        user_id: owner.clone(),
        lines,
        accepted_at: Utc::now().trunc_subsecs(3),
    }
}

async fn saves_and_finds_an_order_by_id_and_correlation_id(b: Backend) {
    let alice = user("alice");
    let order = new_order(
        &alice,
        vec![line("AZ-104", 2699, 2), line("SAA-C03", 1999, 1)],
    );
    let saved = b.store.save_order(&order).await.unwrap();
    assert!(saved.created);
    for reference in [
        OrderRef::Id(saved.order_id),
        OrderRef::Correlation(order.correlation_id),
    ] {
        let found = b
            .store
            .find_order(&alice, reference)
            .await
            .unwrap()
            .expect("found");
        assert_eq!(found.order_id, saved.order_id);
        assert_eq!(found.correlation_id, order.correlation_id);
        assert_eq!(found.user_id, alice);
        assert_eq!(found.status, OrderStatus::Completed);
        assert_eq!(found.total, Money::from_cents(2699 * 2 + 1999));
        assert_eq!(found.created_at, order.accepted_at);
        assert!(found.completed_at.is_some());
        assert_eq!(
            found.lines, order.lines,
            "lines in order, with name and price at purchase time"
        );
    }
}

/// Lines store no billing period: they read back with their product's, whichever the message said.
async fn a_line_reads_back_with_its_products_billing_period(b: Backend) {
    let alice = user("alice");
    let stated = |product, billing_period| OrderLine {
        billing_period,
        ..line(product, 100, 1)
    };
    let order = new_order(
        &alice,
        vec![
            stated("AZ-104", BillingPeriod::OneTime),
            stated("AZ-305", BillingPeriod::Monthly),
            stated("SAA-C03", BillingPeriod::Monthly),
            stated("AZ-500", BillingPeriod::Yearly),
        ],
    );
    let saved = b.store.save_order(&order).await.unwrap();
    let found = b
        .store
        .find_order(&alice, OrderRef::Id(saved.order_id))
        .await
        .unwrap()
        .expect("found");
    let periods: Vec<_> = found.lines.iter().map(|l| l.billing_period).collect();
    assert_eq!(
        periods,
        [
            BillingPeriod::Monthly,
            BillingPeriod::Quarterly,
            BillingPeriod::Yearly,
            BillingPeriod::OneTime
        ]
    );
    let listed = b
        .store
        .list_orders(&alice, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.items[0].lines, found.lines,
        "listing reads them alike"
    );
}

async fn saving_the_same_correlation_id_twice_writes_once(b: Backend) {
    let alice = user("alice");
    let order = new_order(&alice, vec![line("AZ-900", 1999, 1)]);
    let first = b.store.save_order(&order).await.unwrap();
    let again = b.store.save_order(&order).await.unwrap();
    assert_eq!(again.order_id, first.order_id);
    assert!(!again.created);
    let page = b
        .store
        .list_orders(&alice, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].lines.len(), 1, "no duplicated lines");
}

async fn concurrent_saves_of_one_order_make_one_row(b: Backend) {
    let alice = user("alice");
    let order = new_order(&alice, vec![line("AZ-204", 2999, 1)]);
    let saves = (0..8).map(|_| {
        let (store, order) = (Arc::clone(&b.store), order.clone());
        tokio::spawn(async move { store.save_order(&order).await.unwrap() })
    });
    let results: Vec<_> = futures_join(saves).await;
    assert_eq!(results.iter().filter(|s| s.created).count(), 1);
    assert!(results.iter().all(|s| s.order_id == results[0].order_id));
    assert_eq!(
        b.store
            .list_orders(&alice, PageRequest::default())
            .await
            .unwrap()
            .total,
        1
    );
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

async fn only_the_owner_sees_or_deletes_an_order(b: Backend) {
    let (alice, mallory) = (user("alice"), user("mallory"));
    let order = new_order(&alice, vec![line("SC-200", 2499, 1)]);
    let saved = b.store.save_order(&order).await.unwrap();
    assert!(
        b.store
            .find_order(&mallory, OrderRef::Id(saved.order_id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.store
            .find_order(&mallory, OrderRef::Correlation(order.correlation_id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !b.store
            .delete_order(&mallory, saved.order_id)
            .await
            .unwrap()
    );
    assert_eq!(
        b.store
            .list_orders(&mallory, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        b.store.owner_of(order.correlation_id).await.unwrap(),
        Some(alice.clone())
    );
    assert!(
        b.store
            .find_order(&alice, OrderRef::Id(saved.order_id))
            .await
            .unwrap()
            .is_some()
    );
}

async fn lists_newest_first_with_paging(b: Backend) {
    let alice = user("alice");
    let mut ids = Vec::new();
    for product in ["AZ-104", "AZ-204", "AZ-305"] {
        ids.push(
            b.store
                .save_order(&new_order(&alice, vec![line(product, 100, 1)]))
                .await
                .unwrap()
                .order_id,
        );
    }
    let first = b
        .store
        .list_orders(&alice, PageRequest::new(None, Some(2)).unwrap())
        .await
        .unwrap();
    assert_eq!(first.total, 3);
    assert_eq!(
        first.items.iter().map(|o| o.order_id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    assert_eq!(first.items[0].lines[0].product_id.as_str(), "AZ-305");
    let rest = b
        .store
        .list_orders(&alice, PageRequest::new(Some(2), Some(2)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|o| o.order_id).collect::<Vec<_>>(),
        [ids[0]]
    );
}

async fn soft_delete_hides_but_keeps_the_owner(b: Backend) {
    let alice = user("alice");
    let order = new_order(&alice, vec![line("AZ-104", 100, 1)]);
    let saved = b.store.save_order(&order).await.unwrap();
    assert!(b.store.delete_order(&alice, saved.order_id).await.unwrap());
    assert!(
        !b.store.delete_order(&alice, saved.order_id).await.unwrap(),
        "already deleted"
    );
    assert!(
        b.store
            .find_order(&alice, OrderRef::Id(saved.order_id))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        b.store
            .list_orders(&alice, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        b.store.owner_of(order.correlation_id).await.unwrap(),
        Some(alice),
        "the notifier still finds the owner"
    );
    let again = b.store.save_order(&order).await.unwrap();
    assert_eq!(
        (again.order_id, again.created),
        (saved.order_id, false),
        "a redelivery does not resurrect it"
    );
}

async fn an_unknown_product_writes_nothing(b: Backend) {
    let alice = user("alice");
    let order = new_order(
        &alice,
        vec![line("AZ-104", 100, 1), line("NOPE-404", 100, 1)],
    );
    let refused = b.store.save_order(&order).await.unwrap_err();
    // The same order would fail again: not worth a retry (a 500, not a 503).
    assert_eq!(refused.kind, ErrorKind::Permanent, "{refused}");
    assert!(
        b.store
            .owner_of(order.correlation_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        b.store
            .list_orders(&alice, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
}

async fn serves_the_seeded_catalog(b: Backend) {
    let products = b.catalog.load_products().await.unwrap();
    assert_eq!(products.iter().filter(|p| p.is_active).count(), 145);
    assert_eq!(products.len(), 148);
    let az104 = products
        .iter()
        .find(|p| p.product_id.as_str() == "AZ-104")
        .unwrap();
    assert_eq!(
        az104,
        orders_adapters::seed::products()
            .iter()
            .find(|p| p.product_id == az104.product_id)
            .unwrap()
    );
    b.store.ping().await.unwrap();
}

/// One test per case for a backend; `$attr` is `ignore` for backends CI cannot reach.
fn failed(order: &NewOrder, reason: &str) -> FailedOrder {
    FailedOrder {
        order: OrderAccepted {
            correlation_id: order.correlation_id,
            user_id: order.user_id.clone(),
            items: order.lines.clone(),
            accepted_at: order.accepted_at,
            traceparent: None,
        },
        reason: reason.into(),
        failed_at: Utc::now().trunc_subsecs(3),
    }
}

/// A dead-lettered order is kept with its lines and reason for its owner only, the latest
/// reason wins, and saving the order (a retry that worked) clears it. A persisted order never
/// becomes failed.
async fn a_failure_is_kept_until_the_order_is_saved(b: Backend) {
    let (erin, frank) = (user("erin"), user("frank"));
    let order = new_order(&erin, vec![line("NEW-9", 1000, 1)]);
    let cid = order.correlation_id;
    let first = failed(&order, "MaxDeliveryCountExceeded: first");
    assert_eq!(
        b.store.record_failure(&first).await.unwrap(),
        FailureRecorded::Failed
    );
    let again = failed(&order, "MaxDeliveryCountExceeded: second");
    assert_eq!(
        b.store.record_failure(&again).await.unwrap(),
        FailureRecorded::Failed
    );
    let found = b
        .store
        .find_failure(&erin, cid)
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(found, again);
    assert_eq!(b.store.find_failure(&frank, cid).await.unwrap(), None);
    let listed = b.store.failures(1000).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|f| f.order.correlation_id == cid)
            .count(),
        1
    );

    // Fixed and retried: the order is saved and no longer failed.
    let order = NewOrder {
        lines: vec![line("AZ-104", 1000, 1)],
        ..order
    };
    let saved = b.store.save_order(&order).await.unwrap();
    assert_eq!(b.store.find_failure(&erin, cid).await.unwrap(), None);
    assert_eq!(
        b.store.record_failure(&first).await.unwrap(),
        FailureRecorded::AlreadyPersisted(saved.order_id)
    );
    assert_eq!(b.store.find_failure(&erin, cid).await.unwrap(), None);
}

macro_rules! contract {
    (#[$attr:meta] $backend:ident) => {
        mod $backend {
            contract!(@cases $backend #[$attr]
                saves_and_finds_an_order_by_id_and_correlation_id,
                a_line_reads_back_with_its_products_billing_period,
                saving_the_same_correlation_id_twice_writes_once,
                concurrent_saves_of_one_order_make_one_row,
                only_the_owner_sees_or_deletes_an_order,
                lists_newest_first_with_paging,
                soft_delete_hides_but_keeps_the_owner,
                an_unknown_product_writes_nothing,
                serves_the_seeded_catalog,
                a_failure_is_kept_until_the_order_is_saved
            );
        }
    };
    (@cases $backend:ident #[$attr:meta] $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[$attr]
            async fn $case() {
                super::$case(super::$backend().await).await;
            }
        )+
    };
}

contract!(
    #[doc = "Always runs."]
    sqlite
);
contract!(
    #[ignore = "needs SQLSERVER_TEST_CONNECTION_STRING"]
    sqlserver
);
