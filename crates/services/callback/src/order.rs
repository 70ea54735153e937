//! A callback order and its attempts, as the API shows them and as they are written to
//! the coordinator (one key per order, `callback/orders/{id}`).

use serde::{Deserialize, Serialize};

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Waiting for its window, its next attempt or a free operator.
    Waiting,
    /// An attempt is under way.
    Calling,
    /// An operator and the customer were connected.
    Completed,
    /// Given up: attempts used, or the window closed; `ended` says which.
    Failed,
    /// Cancelled through the API.
    Cancelled,
}

impl OrderState {
    /// Every state, in order (metrics, filters).
    pub const ALL: [OrderState; 5] =
        [OrderState::Waiting, OrderState::Calling, OrderState::Completed, OrderState::Failed, OrderState::Cancelled];

    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Waiting => "waiting",
            OrderState::Calling => "calling",
            OrderState::Completed => "completed",
            OrderState::Failed => "failed",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// Whether the order is over.
    pub fn finished(self) -> bool {
        matches!(self, OrderState::Completed | OrderState::Failed | OrderState::Cancelled)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The operator and the customer were connected.
    Connected,
    /// The operator's phone did not answer.
    OperatorNoAnswer,
    /// The operator's phone refused (busy, declined, unreachable).
    OperatorRefused,
    /// The customer did not answer.
    CustomerNoAnswer,
    /// The customer's phone was busy or declined.
    CustomerBusy,
    /// The call failed otherwise (refused by the callmanager, a SIP error); `detail` says.
    Failed,
    /// The attempt was cut by a failover of mware before its outcome was known; it is
    /// not dialled again (a new attempt is made instead).
    Interrupted,
    /// The order was cancelled while the attempt ran.
    Cancelled,
}

impl Outcome {
    /// Its name in the API and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::OperatorNoAnswer => "operator_no_answer",
            Outcome::OperatorRefused => "operator_refused",
            Outcome::CustomerNoAnswer => "customer_no_answer",
            Outcome::CustomerBusy => "customer_busy",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One attempt: an operator rung, then the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1, 2, ...
    pub n: u32,
    /// The operator rung (as listed in the queue).
    pub operator: String,
    /// The critical section held for the attempt.
    pub section: String,
    /// The fencing token of that hold (to release it, from any instance).
    pub section_token: u64,
    /// Operators skipped before this one because their critical section was held.
    pub skipped_busy: Vec<String>,
    /// Started (the attempt written, before the call was placed), ms since the Unix epoch.
    pub started_ms: u64,
    /// The callmanager's call id, once placed.
    pub call_id: Option<String>,
    /// When the operator and the customer were connected.
    pub connected_ms: Option<u64>,
    /// When the attempt ended.
    pub ended_ms: Option<u64>,
    /// How it ended (none while it runs).
    pub outcome: Option<Outcome>,
    /// The SIP code or reason behind the outcome, in words.
    pub detail: Option<String>,
    /// The instance that ran it (last).
    pub instance: String,
}

impl Attempt {
    /// The critical section owner of this attempt (unique per order and attempt).
    pub fn owner(order: &str, n: u32) -> String {
        format!("callback:{order}:{n}")
    }
}

/// A callback order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    /// `<group>-<hex>`.
    pub id: String,
    /// The domain (canonical): the callmanager's calls and the critical sections are its.
    pub domain: String,
    /// The customer's number or URI, as given.
    pub number: String,
    /// The queue whose operators are rung (none when one operator was named).
    pub queue: Option<String>,
    /// The one operator to ring (none when a queue was named).
    pub operator: Option<String>,
    /// Not before, ms since the Unix epoch.
    pub not_before_ms: Option<u64>,
    /// Not after, ms since the Unix epoch: no attempt starts later.
    pub not_after_ms: Option<u64>,
    /// A note for the operator, as given.
    pub note: Option<String>,
    /// Created, ms since the Unix epoch.
    pub created_ms: u64,
    /// Its state.
    pub state: OrderState,
    /// When the next attempt may start, ms since the Unix epoch.
    pub next_at_ms: u64,
    /// Why it waits (e.g. every operator busy), or why it ended.
    pub reason: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Ended (completed, failed, cancelled), ms since the Unix epoch.
    pub ended_ms: Option<u64>,
}

impl Order {
    /// The attempt under way, if any.
    pub fn open_attempt(&self) -> Option<&Attempt> {
        self.attempts.last().filter(|a| a.outcome.is_none())
    }

    /// The attempt under way, to change.
    pub fn open_attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut().filter(|a| a.outcome.is_none())
    }
}
