//! Run with: `PORT=8080 cargo run -p typed-json`, then
//! `curl -d '{"items":[{"sku":"a","price_cents":250,"quantity":2}]}' localhost:8080`.
//!
//! A typed event handler, as with AWS Lambda or Tencent SCF: the JSON body is parsed into `Order`
//! (400 with serde's message when it does not fit), the `Receipt` is answered as JSON.

use faas::{Context, Error, StatusCode};
use serde::{Deserialize, Serialize};

/// One line of an order.
#[derive(Debug, Deserialize)]
struct Item {
    sku: String,
    price_cents: u64,
    quantity: u32,
}

/// The event: an order to total.
#[derive(Debug, Deserialize)]
struct Order {
    items: Vec<Item>,
    #[serde(default)]
    coupon: Option<String>,
}

/// The output: what the order costs.
#[derive(Debug, Serialize, PartialEq)]
struct Receipt {
    lines: usize,
    total_cents: u64,
    discounted: bool,
    call_id: Option<String>,
}

/// Totals an order; an empty order is a 422, an unknown coupon a 400.
#[faas::handler]
async fn total(order: Order, ctx: Context) -> Result<Receipt, Error> {
    if order.items.is_empty() {
        return Err(Error::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the order has no items",
        ));
    }
    let mut total: u64 = 0;
    for item in &order.items {
        let line = item
            .price_cents
            .checked_mul(u64::from(item.quantity))
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| Error::bad_request(format!("item {:?}: total overflows", item.sku)))?;
        total = line;
    }
    let discounted = match order.coupon.as_deref() {
        None => false,
        Some("TENOFF") => {
            total -= total / 10;
            true
        }
        Some(other) => return Err(Error::bad_request(format!("unknown coupon {other:?}"))),
    };
    Ok(Receipt {
        lines: order.items.len(),
        total_cents: total,
        discounted,
        call_id: ctx.call_id().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(coupon: Option<&str>) -> Order {
        let item = |sku: &str, price_cents, quantity| Item {
            sku: sku.into(),
            price_cents,
            quantity,
        };
        Order {
            items: vec![item("a", 250, 2), item("b", 100, 1)],
            coupon: coupon.map(Into::into),
        }
    }

    #[tokio::test]
    async fn totals_and_discounts() {
        let ctx = Context::builder().call_id("c1").build();
        let receipt = total(order(None), ctx.clone()).await.unwrap();
        assert_eq!(receipt.total_cents, 600);
        assert_eq!(receipt.call_id.as_deref(), Some("c1"));
        assert_eq!(
            total(order(Some("TENOFF")), ctx.clone())
                .await
                .unwrap()
                .total_cents,
            540
        );
        let err = total(order(Some("FREE")), ctx).await.unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }
}
