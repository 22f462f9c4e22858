//! The service's state: the plan version served (a [`Snapshot`] swapped in
//! whole behind an `Arc`), the live overrides folded from events, the logs,
//! the planning jobs and the shared live state of the replicas. Everything a
//! handler reads or changes goes through [`ServiceState`]; nothing here knows
//! HTTP routes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use allot_scenarios::plans::store::Activation;
use allot_scenarios::PlanStore;
use axum::http::StatusCode;

use crate::decide::{self, CustomerOverride, DecisionView, LIVE_STATE_STALE};
use crate::errors::{ApiError, ServeError};
use crate::events::{AuditLog, EventLog, LoggedEvent};
use crate::contacts::{ContactMade, VolumeBurn};
use crate::experiments::{ArmLabel, Assignment, Experiment, ExperimentChange, ExperimentError, ExperimentKind, ExperimentReport, Experiments};
use crate::index::{LiveSupply, PlanIndex, StockMove};
use crate::drift::{AcceptanceDrift, DemandCell, DemandDrift, DemandOrder, DriftPolicy, OfferDrift, Seen};
use crate::outcomes::{Acceptance, OutcomeBurn};
use crate::jobs::PlanJobs;
use crate::live::import::open_store_live;
use crate::live::{ActivationError, LiveDb, LiveError};
use crate::metrics::Metrics;
use crate::security::ApiKeys;
use crate::shared::{self, SharedLive};

/// The state every handler receives.
pub type AppState = Arc<ServiceState>;

/// Default age after which a plan is no longer trusted and the fallback answers.
pub const DEFAULT_MAX_PLAN_AGE: Duration = Duration::from_secs(48 * 3600);

/// Default of [`ServiceConfig::max_live_silence`]: the replicas' liveness, so
/// a replica the others no longer wait for is already answering the fallback.
pub const DEFAULT_MAX_LIVE_SILENCE: Duration = shared::REPLICA_LIVENESS;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Accepted keys.
    pub keys: ApiKeys,
    /// A plan older than this is answered by the fallback.
    pub max_plan_age: Duration,
    /// `POST /v1/plans` plans only scenarios inside this directory.
    pub scenario_root: PathBuf,
    /// A replica (`--database`) whose last successful sync with PostgreSQL is
    /// older than this answers only the fallback, with no offers
    /// ([`LIVE_STATE_STALE`]), and `/readyz` answers 503, until it syncs again.
    /// At most [`shared::REPLICA_LIVENESS`]: past it, a consent change is
    /// acknowledged without waiting for this replica. Unused without `--database`.
    pub max_live_silence: Duration,
    /// Live events are kept this long (their ids remembered, so a retry is
    /// recognized); older ones are compacted ([`EventLog::compact`]) at each
    /// activation and hourly.
    pub event_window: Duration,
    /// When live acceptance drifts from the plan's uptake, and what is done about it.
    pub drift: DriftPolicy,
}

/// Default of [`ServiceConfig::event_window`]: a month, far beyond any
/// client's retry.
pub const DEFAULT_EVENT_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// How often events are compacted besides at each activation.
pub const COMPACTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Why the served snapshot is not the active plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Active,
    NoActivePlan,
    StoreError,
}

/// Whose customer facts (consent, suppression) a snapshot's plan is
/// answered with. Why: the fallback after a store error serves an older
/// version in place of the active one, and the planner's newer data may
/// withdraw a consent the older version still holds; governance fails
/// closed, so a withdrawal in the active version's data holds on top, and
/// when those facts cannot be read, no offer is shown.
#[derive(Debug, Clone)]
pub(crate) enum CustomerFactsFrom {
    /// The plan's own facts are the newest (it is the active version, or
    /// no version is active).
    Plan,
    /// The plan stands in for another version, whose customers that
    /// withdrew consent (`consent` false) or are suppressed are these: their
    /// objection holds here too unless a live event says otherwise.
    Newer(Arc<HashMap<Box<str>, CustomerObjection>>),
    /// The plan stands in for a version whose facts could not be read (or
    /// for an unknown one): consent is unknown, and no offer is shown.
    Unknown,
}

/// One customer's objection in a version's data (see [`CustomerFactsFrom`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomerObjection {
    pub(crate) consent: bool,
    pub(crate) suppressed: bool,
}

impl CustomerFactsFrom {
    /// Holds on `customer` what these facts say beyond the plan's own;
    /// `false` when consent is unknown.
    fn hold(&self, customer_id: &str, customer: &mut CustomerOverride) -> bool {
        match self {
            CustomerFactsFrom::Plan => true,
            CustomerFactsFrom::Newer(objections) => {
                if let Some(o) = objections.get(customer_id) {
                    o.hold(customer);
                }
                true
            }
            CustomerFactsFrom::Unknown => false,
        }
    }
}

impl CustomerObjection {
    /// Holds this objection on top of a customer's live override: a live
    /// event wins, else a withdrawal or suppression here stands.
    pub(crate) fn hold(self, customer: &mut CustomerOverride) {
        customer.consent = customer.consent.or((!self.consent).then_some(false));
        customer.suppressed = customer.suppressed.or(self.suppressed.then_some(true));
    }
}

/// A plan version with its live supply: what one request reads.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) plan: Arc<PlanIndex>,
    pub(crate) supply: LiveSupply,
    /// The plan's volume rules as live contacts burn them down.
    pub(crate) burn: VolumeBurn,
    /// The plan's redemption caps and budget as accepted outcomes burn them down.
    pub(crate) outcomes: OutcomeBurn,
    /// Live acceptance against the plan's uptake.
    pub(crate) drift: AcceptanceDrift,
    /// Live demand against the plan's demand plan.
    pub(crate) demand: DemandDrift,
    pub(crate) source: Source,
    pub(crate) facts: CustomerFactsFrom,
}

impl Snapshot {
    /// `plan` with everything the event log holds applied: stock moves since
    /// the plan was saved, every live contact and acceptance.
    fn build(plan: Arc<PlanIndex>, events: &EventLog, source: Source, facts: CustomerFactsFrom) -> Self {
        let supply = LiveSupply::compute(&plan, events.moves_since(plan.created_at()));
        let burn = VolumeBurn::compute(&plan, events.customer_contacts().values().flatten());
        let outcomes = OutcomeBurn::compute(&plan, events.acceptances().iter());
        let drift = AcceptanceDrift::compute(&plan, events.seen().iter());
        let demand = DemandDrift::compute(&plan, events.demand_orders().iter());
        Snapshot { plan, supply, burn, outcomes, drift, demand, source, facts }
    }

    /// This snapshot with newly folded events applied (moves received before
    /// the plan was saved are already in its stock).
    fn advanced(&self, moves: &[(chrono::DateTime<chrono::Utc>, StockMove)], contacts: &[ContactMade], acceptances: &[Acceptance], seen: &[Seen], orders: &[DemandOrder]) -> Self {
        let mut supply = self.supply.clone();
        for (at, m) in moves {
            if *at > self.plan.created_at() {
                supply.apply(&self.plan, m);
            }
        }
        let mut burn = self.burn.clone();
        for contact in contacts {
            burn.apply(&self.plan, contact);
        }
        let mut outcomes = self.outcomes.clone();
        for a in acceptances {
            outcomes.apply(&self.plan, a);
        }
        let mut drift = self.drift.clone();
        for s in seen {
            drift.apply(&self.plan, s);
        }
        let mut demand = self.demand.clone();
        for o in orders {
            demand.apply(&self.plan, o);
        }
        Snapshot { plan: self.plan.clone(), supply, burn, outcomes, drift, demand, source: self.source, facts: self.facts.clone() }
    }
}

/// Shared state of the service.
#[derive(Debug)]
pub struct ServiceState {
    pub(crate) store: PlanStore,
    pub(crate) config: ServiceConfig,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Writers (events, plan swaps) take this first, so a swap never misses an event.
    events: Mutex<EventLog>,
    pub(crate) customers: RwLock<HashMap<String, CustomerOverride>>,
    /// Every customer's live contacts (contact events).
    pub(crate) contacts: RwLock<HashMap<String, Vec<ContactMade>>>,
    /// The experiments (as folded by the event log), read on every decision.
    experiments: RwLock<Experiments>,
    /// The versions running canaries and shadows serve or compute, by version.
    arm_plans: RwLock<HashMap<String, Arc<Snapshot>>>,
    /// The served version a drift re-plan was last started for.
    replanned_for: Mutex<Option<String>>,
    pub(crate) audit: AuditLog,
    pub(crate) metrics: Metrics,
    last_store_error: RwLock<Option<String>>,
    pub(crate) jobs: PlanJobs,
    /// The live-state database (activations are read from it on every sync).
    live: Arc<LiveDb>,
    /// The live state shared with other replicas (`--database`), if any.
    pub(crate) shared: Option<Arc<SharedLive>>,
    /// Sequence number of the activation last loaded.
    plan_seq: std::sync::atomic::AtomicI64,
    /// Held for a whole reload: reloads (a route's, the sync loop's) run one
    /// at a time and each reads the newest activation once it holds this, so
    /// a slow reload of an older activation never swaps in after a newer one.
    reloading: Mutex<()>,
    /// When events were last compacted.
    compacted_at: Mutex<Option<Instant>>,
    /// When the shared database was last heard from (see [`Self::note_live_contact`]).
    live_contact: LiveContact,
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl ServiceState {
    /// Opens the store and its live-state database (SQLite, `live.db`,
    /// importing the old file mode's logs and activation history on first
    /// start), folds the events and loads the plan to serve.
    pub fn open(store_dir: impl Into<PathBuf>, config: ServiceConfig) -> Result<Self, ServeError> {
        let store = PlanStore::open(store_dir)?;
        let db = open_store_live(store.root(), None).map_err(|e| ServeError::Log { what: "the live-state database", source: e.into() })?;
        Self::assemble(store, config, Arc::new(db), None)
    }

    /// Opens the store for plan files, with events, consent, activations and
    /// the audit in PostgreSQL, shared with the other replicas (see
    /// [`shared`]); what the store holds of file mode is imported first.
    pub fn open_shared(store_dir: impl Into<PathBuf>, config: ServiceConfig, shared: Arc<SharedLive>) -> Result<Self, ServeError> {
        let opened = Instant::now();
        let store = PlanStore::open(store_dir)?;
        let db = open_store_live(store.root(), Some(shared.clone())).map_err(|e| ServeError::Log { what: "the shared live state", source: e.into() })?;
        let state = Self::assemble(store, config, Arc::new(db), Some(shared))?;
        state.note_live_contact(opened);
        Ok(state)
    }

    fn assemble(store: PlanStore, config: ServiceConfig, db: Arc<LiveDb>, shared: Option<Arc<SharedLive>>) -> Result<Self, ServeError> {
        let events = EventLog::open(db.clone()).map_err(|e| ServeError::Log { what: "the event log", source: e.into() })?;
        let audit = AuditLog::open(db.clone()).map_err(|source| ServeError::Log { what: "the audit log", source })?;
        let state = ServiceState {
            customers: RwLock::new(events.customer_overrides().clone()),
            contacts: RwLock::new(events.customer_contacts().clone()),
            experiments: RwLock::new(events.experiments().clone()),
            arm_plans: RwLock::new(HashMap::new()),
            replanned_for: Mutex::new(None),
            events: Mutex::new(events),
            store,
            config,
            snapshot: RwLock::new(None),
            audit,
            metrics: Metrics::new(),
            last_store_error: RwLock::new(None),
            jobs: PlanJobs::start(Some(db.clone())).map_err(|source| ServeError::Log { what: "the planning job runner", source })?,
            live: db,
            shared,
            plan_seq: std::sync::atomic::AtomicI64::new(0),
            reloading: Mutex::new(()),
            compacted_at: Mutex::new(None),
            live_contact: LiveContact::new(),
        };
        // The experiments' versions first: loading the active plan compacts
        // the log, and no stock move one of them reads may go.
        state.refresh_arm_plans(&state.events());
        state.reload();
        Ok(state)
    }

    /// Loads the versions running canaries and shadows need (with the live
    /// events applied) and drops those no experiment runs any more. A version
    /// that does not load is logged; its customers are served the active plan
    /// (arm `excluded`).
    fn refresh_arm_plans(&self, events: &EventLog) {
        let experiments = events.experiments();
        let wanted: Vec<String> =
            [ExperimentKind::Canary, ExperimentKind::Shadow].into_iter().filter_map(|k| experiments.running(k).and_then(|e| e.version.clone())).collect();
        let mut plans = write(&self.arm_plans);
        plans.retain(|v, _| wanted.contains(v));
        let compacted = self.live.inventory_compacted();
        for v in wanted {
            if plans.contains_key(&v) {
                continue;
            }
            // Loaded only while it can know its live stock (a version whose
            // load failed before compaction passed it stays out).
            let kept = compacted.as_ref().map_err(|e| e.to_string()).and_then(|c| crate::live::moves_kept(&self.store, &v, *c).map_err(|e| e.to_string()));
            if let Err(e) = kept {
                tracing::warn!(version = %v, error = %e, "an experiment's plan version cannot know its live stock; its customers get the active plan");
                continue;
            }
            match PlanIndex::load(&self.store, &v) {
                Ok(plan) => {
                    plans.insert(v, Arc::new(Snapshot::build(Arc::new(plan), events, Source::Active, CustomerFactsFrom::Plan)));
                }
                Err(e) => tracing::warn!(version = %v, error = %e, "an experiment's plan version does not load; its customers get the active plan"),
            }
        }
    }

    /// Live acceptance against the served plan's uptake, per offer shown
    /// since it was saved (see [`crate::drift`]).
    pub fn acceptance_drift(&self) -> Vec<OfferDrift> {
        self.current().map_or_else(Vec::new, |s| s.drift.offers(&s.plan, &self.config.drift))
    }

    /// Live demand against the served plan's demand plan, per zone × SKU
    /// with orders (see [`crate::drift`]).
    pub fn demand_drift(&self) -> Vec<DemandCell> {
        self.current().map_or_else(Vec::new, |s| s.demand.cells(&self.config.drift))
    }

    /// The `/readyz` warnings of the served plan: offers whose acceptance
    /// and zone × SKUs whose demand drift from it.
    pub(crate) fn drift_warnings(&self) -> Vec<String> {
        let acceptance = self.acceptance_drift().into_iter().filter(|o| o.drifting).map(|o| o.warning());
        acceptance.chain(self.demand_drift().into_iter().filter(|c| c.drifting).map(|c| c.warning())).collect()
    }

    /// The served version, when an offer's acceptance or a zone × SKU's
    /// demand drifts, the policy asks for a re-plan and none was started for
    /// it yet: marks it started, so each served version is re-planned at most once.
    pub fn replan_due(&self) -> Option<String> {
        self.config.drift.replan?;
        let s = self.current()?;
        let drifting = s.drift.offers(&s.plan, &self.config.drift).iter().any(|o| o.drifting) || s.demand.cells(&self.config.drift).iter().any(|c| c.drifting);
        if s.source != Source::Active || !drifting {
            return None;
        }
        let mut last = self.replanned_for.lock().unwrap_or_else(|e| e.into_inner());
        (last.as_deref() != Some(s.plan.version())).then(|| {
            *last = Some(s.plan.version().to_string());
            s.plan.version().to_string()
        })
    }

    /// Every experiment, as folded.
    pub fn experiments(&self) -> Experiments {
        read(&self.experiments).clone()
    }

    /// Checks a change to the experiments against the log's newest state
    /// (other replicas' changes folded first) and records it when it changes
    /// something; returns whether it did and the experiment after it.
    pub(crate) fn change_experiment(&self, change: ExperimentChange) -> Result<(bool, Experiment), ApiError> {
        let unavailable = |e: LiveError| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "event_log_error", format!("the experiment change was not recorded: {e}"));
        let id = change.experiment_id().to_string();
        let (changes, experiment, seq) = {
            let mut events = self.events();
            let folded = events.catch_up().map_err(unavailable)?;
            self.apply_folded(&events, &folded);
            let ids = self.store.ids().map_err(ApiError::from)?;
            let changes = events.experiments().check(&change, |v| ids.iter().any(|id| id == v))?;
            if changes {
                let received_at = chrono::Utc::now();
                let event_id = match &change {
                    ExperimentChange::Start(_) => id.clone(),
                    ExperimentChange::Share { .. } => format!("{id}/share/{}", received_at.format("%Y%m%dT%H%M%S%.9fZ")),
                    ExperimentChange::Stop { .. } => format!("{id}/stop"),
                };
                // A canary's or shadow's version must know its live stock, as
                // an active one must: checked where the start is recorded, so
                // no compaction slips between.
                let version = match &change {
                    ExperimentChange::Start(crate::experiments::ExperimentStart { version: Some(v), .. }) => Some(v.as_str()),
                    _ => None,
                };
                let kept = |compacted: Option<chrono::DateTime<chrono::Utc>>| version.map_or(Ok(()), |v| crate::live::moves_kept(&self.store, v, compacted));
                let event = LoggedEvent::Experiment { received_at, event_id, change: change.clone() };
                let (_, folded) = events.record_if(event, Some(&kept)).map_err(unavailable)?.map_err(ApiError::from)?;
                self.apply_folded(&events, &folded);
            }
            let experiment = events.experiments().get(&id).cloned().ok_or_else(|| ApiError::from(ExperimentError::Unknown(id.clone())))?;
            // Answer from what the log folded: another replica's start of the
            // same id, or of another experiment of the kind, may have won.
            if let ExperimentChange::Start(s) = &change {
                if experiment.kind != s.kind || experiment.version != s.version || !experiment.running() {
                    return Err(ExperimentError::Conflict(format!("experiment {id:?} was started elsewhere with another body, or has stopped")).into());
                }
            }
            (changes, experiment, events.applied_seq())
        };
        // In force on every live replica before it is answered (a stop is the kill switch).
        if let (Some(db), true) = (&self.shared, changes) {
            let pending = db.wait_applied(seq, shared::CONSENT_WAIT).map_err(|e| unavailable(e.into()))?;
            if !pending.is_empty() {
                tracing::warn!(experiment = %id, replicas = ?pending, "an experiment change is not yet applied by every replica");
            }
        }
        Ok((changes, experiment))
    }

    /// The report of experiment `id` from the raw decisions and outcomes.
    pub(crate) fn experiment_report(&self, id: &str) -> Result<ExperimentReport, ApiError> {
        let experiments = self.experiments();
        crate::events::experiment_report(&self.live, &experiments, &self.audit, id)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_error", format!("the report could not be read: {e}")))?
            .ok_or_else(|| ApiError::from(ExperimentError::Unknown(id.to_string())))
    }

    /// The live-state database.
    pub fn live(&self) -> &LiveDb {
        &self.live
    }

    /// The active plan version with its activation's sequence number (the
    /// newest activation in the live-state database).
    pub(crate) fn active_id(&self) -> Result<Option<(i64, String)>, String> {
        self.live.active_plan().map_err(|e| e.to_string())
    }

    /// Makes `id` the active plan (`None`: the one before the current, a
    /// rollback); every replica follows when the state is shared.
    pub(crate) fn change_active(&self, id: Option<&str>) -> Result<Activation, ApiError> {
        Ok(match id {
            Some(id) => self.live.activate(&self.store, id)?,
            None => self.live.rollback(&self.store)?,
        })
    }

    /// Applies what others recorded since the last look: the other replicas'
    /// events (consent and stock; shared mode only), and a new activation (a
    /// reload; in file mode one made by `allot plans activate` in another
    /// process). The server's sync loop calls it on every notification
    /// (shared mode) and every poll.
    ///
    /// In shared mode, on success it notes the contact
    /// ([`Self::note_live_contact`]) at the instant it *started*: earlier
    /// than the heartbeat it wrote, so this replica's silence is never
    /// shorter than the one the others see.
    pub fn sync_live(&self) -> Result<(), LiveError> {
        let started = Instant::now();
        if let Some(db) = &self.shared {
            let mut events = self.events();
            let folded = events.catch_up()?;
            self.apply_folded(&events, &folded);
            db.heartbeat(events.applied_seq())?;
        }
        self.follow_activations()?;
        if self.shared.is_some() {
            self.note_live_contact(started);
        }
        self.compact_when_due();
        Ok(())
    }

    /// Reloads the served plan when the newest activation is not the one
    /// last loaded.
    fn follow_activations(&self) -> Result<(), LiveError> {
        let active = self.live.active_plan()?;
        if active.is_some_and(|(seq, _)| seq != self.plan_seq.load(Ordering::Relaxed)) {
            self.reload();
        }
        Ok(())
    }

    /// Records that the live state was in step with the database at `at` (a
    /// later contact is kept). The shared mode's sync calls it; a state never
    /// told of a contact (file mode: its database is local) is never stale.
    /// Public so that a test can move the clock without a database.
    pub fn note_live_contact(&self, at: Instant) {
        self.live_contact.note(at);
    }

    /// How long since the last contact, when that is longer than
    /// [`ServiceConfig::max_live_silence`].
    pub(crate) fn live_silence(&self) -> Option<Duration> {
        let silence = self.live_contact.silence()?;
        (silence > self.config.max_live_silence).then_some(silence)
    }

    /// Applies newly folded events to what is served: each consent event to its
    /// customer's override, each inventory event received after the served plan
    /// was saved to its live supply, one stock point at a time (O(1) in the
    /// number of earlier events). Called with the event log locked, so a plan
    /// swap never misses an event.
    pub(crate) fn apply_folded(&self, events: &EventLog, folded: &[LoggedEvent]) {
        let mut moves = Vec::new();
        let mut contacts = Vec::new();
        let mut acceptances = Vec::new();
        let mut seen = Vec::new();
        let mut orders = Vec::new();
        let mut experiments_changed = false;
        {
            let mut customers = None;
            let mut customer_contacts = None;
            for event in folded {
                match event {
                    LoggedEvent::Consent { event, .. } => {
                        let customers = customers.get_or_insert_with(|| write(&self.customers));
                        event.apply_to(customers.entry(event.customer_id.clone()).or_default());
                    }
                    LoggedEvent::Inventory { received_at, event } => {
                        moves.push((*received_at, event.stock_move()));
                        orders.extend(DemandOrder::of(*received_at, event));
                    }
                    LoggedEvent::Contact { event, .. } => {
                        let contact = event.contact();
                        let customer_contacts = customer_contacts.get_or_insert_with(|| write(&self.contacts));
                        customer_contacts.entry(event.customer_id.clone()).or_default().push(contact.clone());
                        contacts.push(contact);
                    }
                    LoggedEvent::Outcome { received_at, event, .. } => {
                        acceptances.extend(event.acceptance());
                        seen.extend(Seen::of(*received_at, event));
                    }
                    LoggedEvent::Experiment { received_at, change, .. } => {
                        write(&self.experiments).apply(change, *received_at);
                        experiments_changed = true;
                    }
                }
            }
        }
        let changed = !(moves.is_empty() && contacts.is_empty() && acceptances.is_empty() && seen.is_empty() && orders.is_empty());
        if changed {
            let mut plans = write(&self.arm_plans);
            for s in plans.values_mut() {
                *s = Arc::new(s.advanced(&moves, &contacts, &acceptances, &seen, &orders));
            }
        }
        // After the advance: a version loaded now is built from the whole
        // log, this batch included, and must not see it twice.
        if experiments_changed {
            self.refresh_arm_plans(events);
        }
        if !changed {
            return;
        }
        let Some(current) = self.current() else { return };
        *write(&self.snapshot) = Some(Arc::new(current.advanced(&moves, &contacts, &acceptances, &seen, &orders)));
    }

    pub(crate) fn events(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the active plan (or, failing that, the newest loadable version for
    /// the fallback) and swaps it in; keeps the current one if nothing loads.
    pub fn reload(&self) {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        // `facts`: what holds on any plan standing in for the active one.
        let (loaded, error, facts) = match self.active_id() {
            Ok(Some((seq, id))) => {
                // Loaded or not, this activation has been seen: no reload per poll.
                self.plan_seq.store(seq, Ordering::Relaxed);
                match PlanIndex::load(&self.store, &id) {
                    Ok(plan) => (Some((plan, Source::Active)), None, CustomerFactsFrom::Plan),
                    Err(e) => (self.newest_loadable(Some(&id)).map(|p| (p, Source::StoreError)), Some(e.to_string()), self.objections_of(&id)),
                }
            }
            Ok(None) => (self.newest_loadable(None).map(|p| (p, Source::NoActivePlan)), None, CustomerFactsFrom::Plan),
            // Which version is active is unknown, so is whether its data withdraws a consent.
            Err(e) => (self.newest_loadable(None).map(|p| (p, Source::StoreError)), Some(e.to_string()), CustomerFactsFrom::Unknown),
        };
        if let Some(e) = &error {
            tracing::warn!(error = %e, "store error, answering from the fallback");
        }
        *write(&self.last_store_error) = error.clone();
        let mut events = self.events();
        let activated = loaded.is_some();
        match loaded {
            Some((plan, source)) => self.swap(&events, Arc::new(plan), source, facts),
            None if error.is_some() => {
                // Keep serving what we had, but only through the fallback, and
                // under what the active version's facts say.
                let current = read(&self.snapshot).clone();
                if let Some(s) = current {
                    self.swap(&events, s.plan.clone(), Source::StoreError, facts);
                }
            }
            None => *write(&self.snapshot) = None,
        }
        if activated {
            self.compact(&mut events);
        }
    }

    /// Compacts the live events ([`EventLog::compact`]): consent older than
    /// the event window into the snapshot; inventory older than the window,
    /// than [`ServiceConfig::max_plan_age`], than the plan served and than
    /// every running experiment's version (no plan that could still be
    /// served reads it: a canary may serve a version older than the active
    /// one). Failing leaves everything as it was (one transaction per batch);
    /// it is logged and tried again later.
    fn compact(&self, events: &mut EventLog) {
        *self.compacted_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let now = chrono::Utc::now();
        let consent_cutoff = crate::live::time_before(now, self.config.event_window);
        let mut inventory_cutoff = consent_cutoff.min(crate::live::time_before(now, self.config.max_plan_age));
        if let Some(s) = read(&self.snapshot).as_ref() {
            inventory_cutoff = inventory_cutoff.min(s.plan.created_at());
        }
        for plan in self.experiment_plans() {
            inventory_cutoff = inventory_cutoff.min(plan.created_at());
        }
        match events.compact(consent_cutoff, inventory_cutoff, &self.store) {
            Ok(c) if c == Default::default() => {}
            Ok(c) => tracing::info!(consent = c.consent, inventory = c.inventory, "compacted live events older than the event window"),
            Err(e) => tracing::warn!(error = %e, "compacting live events"),
        }
    }

    /// Compacts when [`COMPACTION_INTERVAL`] has passed since the last time.
    fn compact_when_due(&self) {
        let due = self.compacted_at.lock().unwrap_or_else(|e| e.into_inner()).is_none_or(|t| t.elapsed() >= COMPACTION_INTERVAL);
        if due {
            self.compact(&mut self.events());
        }
    }

    /// The customer facts of version `id` that must hold on a plan standing
    /// in for it: its withdrawals and suppressions, read alone (the version
    /// may have failed to load for another table); unknown when they cannot
    /// be read.
    fn objections_of(&self, id: &str) -> CustomerFactsFrom {
        let mut objections = HashMap::new();
        let read = self.store.for_each_customer(id, |r| {
            if !r.consent || r.suppressed {
                objections.insert(r.customer_id.into(), CustomerObjection { consent: r.consent, suppressed: r.suppressed });
            }
        });
        match read {
            Ok(()) => CustomerFactsFrom::Newer(Arc::new(objections)),
            Err(e) => {
                tracing::warn!(error = %e, version = id, "the active version's customer facts cannot be read: consent is unknown, no offer is shown");
                CustomerFactsFrom::Unknown
            }
        }
    }

    /// The newest version but `skip` that loads and can know its live stock
    /// (saved after every inventory event compaction deleted; see
    /// [`LiveDb::inventory_compacted`](crate::live::LiveDb::inventory_compacted)).
    fn newest_loadable(&self, skip: Option<&str>) -> Option<PlanIndex> {
        let ids = self.store.ids().ok()?;
        // Unknown: no version stands in (the plan served so far is kept).
        let compacted = match self.live.inventory_compacted() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "how far stock moves were compacted cannot be read; no version stands in");
                return None;
            }
        };
        // Newest first: once one was saved before the compacted moves, every older one was too.
        ids.iter()
            .rev()
            .filter(|id| Some(id.as_str()) != skip)
            .take_while(|id| !matches!(crate::live::moves_kept(&self.store, id, compacted), Err(allot_scenarios::StoreError::MovesCompacted { .. })))
            .find_map(|id| PlanIndex::load(&self.store, id).ok())
    }

    pub(crate) fn swap(&self, events: &EventLog, plan: Arc<PlanIndex>, source: Source, facts: CustomerFactsFrom) {
        *write(&self.snapshot) = Some(Arc::new(Snapshot::build(plan, events, source, facts)));
    }

    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        read(&self.snapshot).clone()
    }

    /// The plan being served from, if any.
    pub fn plan(&self) -> Option<Arc<PlanIndex>> {
        self.current().map(|s| s.plan.clone())
    }

    /// The versions running experiments serve or log beside the active
    /// plan (a canary's, a shadow's), loaded.
    pub(crate) fn experiment_plans(&self) -> Vec<Arc<PlanIndex>> {
        read(&self.arm_plans).values().map(|s| s.plan.clone()).collect()
    }

    /// Whether the served plan is the active one, fresh enough to trust, with
    /// live state (consent) in step with the shared database.
    pub(crate) fn fallback_reason(&self, s: &Snapshot) -> Option<&'static str> {
        if self.live_silence().is_some() {
            return Some(LIVE_STATE_STALE);
        }
        match s.source {
            Source::NoActivePlan => Some("no_active_plan"),
            Source::StoreError => Some("store_error"),
            Source::Active => {
                let age = chrono::Utc::now().signed_duration_since(s.plan.created_at()).to_std().unwrap_or_default();
                (age > self.config.max_plan_age).then_some("plan_stale")
            }
        }
    }

    /// The decision for one customer as JSON, recorded in the audit (in its
    /// compact form); `None` when no loaded plan knows the customer.
    pub fn decide_json(&self, customer_id: &str, limit: usize, channel: Option<&str>) -> Option<Vec<u8>> {
        let Serving { snapshot, canary, assignment } = self.serving(customer_id);
        let s = snapshot?;
        // A canary's version never loosens what the active plan knows of the
        // customer's consent (its data may be older).
        let active = if canary { self.current() } else { None };
        let mut d = self.decision(&s, customer_id, limit, channel, assignment.holdout, active.as_deref())?;
        if let Some((id, version)) = &assignment.shadow {
            self.shadow_decision(id, version, customer_id, limit, channel);
        }
        d.experiments = assignment.arms;
        // A holdout's baseline is the experiment's, not a fallback to alert on.
        self.metrics.count_decision(d.fallback && d.fallback_reason != Some(decide::HOLDOUT));
        let mut json = Vec::with_capacity(1024);
        serde_json::to_writer(&mut json, &d).ok()?;
        self.audit.record(&d);
        Some(json)
    }

    /// What serves a customer now, and their arms: the canary's version in
    /// its share (when it loaded and knows the customer; else the active
    /// plan, arm `excluded`), else the active plan. Decisions and outcomes
    /// both come here, so an outcome carries the arm its decision had.
    pub(crate) fn serving(&self, customer_id: &str) -> Serving {
        let active = self.current();
        let experiments = read(&self.experiments);
        if !experiments.any_running() {
            return Serving { snapshot: active, canary: false, assignment: Assignment::default() };
        }
        let mut assignment = experiments.assign(customer_id);
        drop(experiments);
        let canary = assignment.canary.as_ref().and_then(|v| read(&self.arm_plans).get(v).cloned()).filter(|c| c.plan.customer_ix.contains_key(customer_id));
        if canary.is_none() && assignment.canary.take().is_some() {
            for arm in assignment.arms.iter_mut().filter(|l| l.arm == "canary") {
                arm.arm = "excluded".to_string();
            }
        }
        match canary {
            Some(c) => Serving { snapshot: Some(c), canary: true, assignment },
            None => Serving { snapshot: active, canary: false, assignment },
        }
    }

    /// Computes and audits (arm `shadow`) what the shadow's version would
    /// answer; nothing of it is served or counted as served.
    fn shadow_decision(&self, experiment_id: &str, version: &str, customer_id: &str, limit: usize, channel: Option<&str>) {
        let Some(shadow) = read(&self.arm_plans).get(version).cloned() else { return };
        if let Some(mut d) = self.decision(&shadow, customer_id, limit, channel, false, None) {
            d.experiments = vec![ArmLabel { experiment_id: experiment_id.to_string(), arm: "shadow".to_string() }];
            self.audit.record(&d);
        }
    }

    /// The decision from snapshot `s` (the baseline when `holdout`); `None`
    /// when its plan does not know the customer. `active`: the active
    /// snapshot when `s` is another version's (a canary's), whose facts of
    /// the customer (its plan's, and what holds on it: [`CustomerFactsFrom`])
    /// hold here too unless a live event says otherwise.
    fn decision<'a>(&self, s: &'a Snapshot, customer_id: &'a str, limit: usize, channel: Option<&'a str>, holdout: bool, active: Option<&Snapshot>) -> Option<DecisionView<'a>> {
        let &c = s.plan.customer_ix.get(customer_id)?;
        let mut customer = read(&self.customers).get(customer_id).copied().unwrap_or_default();
        let mut consent_known = true;
        if let Some(a) = active {
            if let Some(&ac) = a.plan.customer_ix.get(customer_id) {
                let f = a.plan.customers[ac as usize];
                CustomerObjection { consent: f.consent, suppressed: f.suppressed }.hold(&mut customer);
            }
            consent_known &= a.facts.hold(customer_id, &mut customer);
        }
        consent_known &= s.facts.hold(customer_id, &mut customer);
        let fallback = self.fallback_reason(s).or(holdout.then_some(decide::HOLDOUT));
        let consent_known = consent_known && fallback != Some(LIVE_STATE_STALE);
        // Only a plan with contact policies reads the live contacts (no lock otherwise).
        let contacts = s.plan.policy_index.is_some().then(|| read(&self.contacts));
        let ask = decide::Ask {
            limit,
            channel,
            customer,
            fallback,
            contacts: contacts.as_ref().and_then(|c| c.get(customer_id)).map_or(&[], Vec::as_slice),
            today: chrono::Utc::now().date_naive(),
            by_margin: holdout,
            consent_known,
        };
        Some(decide::decide(&s.plan, &s.supply, &s.burn, &s.outcomes, customer_id, c, &ask))
    }
}

/// What serves one customer now ([`ServiceState::serving`]).
pub(crate) struct Serving {
    /// The snapshot that answers (none without any plan).
    pub(crate) snapshot: Option<Arc<Snapshot>>,
    /// Whether it is a canary's version.
    pub(crate) canary: bool,
    /// The customer's arms in the running experiments.
    pub(crate) assignment: Assignment,
}

/// The instant of the last contact with the shared database, read on every
/// decision: an atomic (nanoseconds after `base`, 0 for none), not a lock.
#[derive(Debug)]
struct LiveContact {
    /// A day before the state was created, so that a contact noted for an
    /// earlier instant (a test moving the clock back) is still represented.
    base: Instant,
    nanos: AtomicU64,
}

impl LiveContact {
    fn new() -> Self {
        let now = Instant::now();
        LiveContact { base: now.checked_sub(Duration::from_secs(24 * 3600)).unwrap_or(now), nanos: AtomicU64::new(0) }
    }

    /// Keeps the later of `at` and the contact already noted.
    fn note(&self, at: Instant) {
        let nanos = u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX).max(1);
        self.nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Time since the last contact; `None` when none was ever noted.
    fn silence(&self) -> Option<Duration> {
        let nanos = self.nanos.load(Ordering::Relaxed);
        (nanos != 0).then(|| (self.base + Duration::from_nanos(nanos)).elapsed())
    }
}

impl From<ActivationError> for ApiError {
    fn from(e: ActivationError) -> Self {
        match e {
            ActivationError::Store(e) => e.into(),
            ActivationError::Database(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_error", e.to_string()),
        }
    }
}
