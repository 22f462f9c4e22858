//! Contact policies (model version 2): the `max_per_customer` rules of
//! `rules.csv` and the conflicts of `conflicts.csv`, given the contacts already
//! made (`contact_history.csv`). Both are per-customer rules, so they are
//! written here once and every solver reads them from here:
//!
//! * **History exclusions** ([`HistoryRules::exclusion`], applied by
//!   `Candidates::build`): a pair whose `max_per_customer` rule history has
//!   exhausted (reason `rule:<id>`), or that falls in a conflict window opened
//!   by a past contact (reason `conflict`), is no candidate.
//! * **Customer rows** ([`CustomerRows`]): for every customer, the rows over its
//!   candidates that can bind: a `max_per_customer` rule selecting more of its
//!   candidates than history leaves room for (`sum x <= bound - h[c]`), and
//!   `x[a] + x[b] <= 1` for every conflicting pair of its candidates. The exact
//!   model adds them as rows, the decomposition keeps them inside each
//!   customer's subproblem (`decomposed::customer_lp`), the served plan keeps
//!   them exactly and the reasons name them. The checker re-derives them from
//!   the spec on its own (`feasibility`).

use std::collections::HashMap;
use std::ops::Range;

use crate::model::{Conflict, ContactRule, CustomerIx, OfferIx, PastContact, Problem};

/// What a customer row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyRow {
    /// A `max_per_customer` rule, by index in `Problem::contact_rules`.
    Rule(u32),
    /// A conflict, by index in `Problem::conflicts` (the first that makes the pair conflict).
    Conflict(u32),
}

/// Why history excludes a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryExclusion {
    /// The `max_per_customer` rule (index in `Problem::contact_rules`) has no room left.
    Rule(u32),
    /// A past contact opens a window of this conflict (index in `Problem::conflicts`).
    Conflict(u32),
}

/// The per-offer view of the contact policies, computed once per problem.
#[derive(Debug, Clone)]
pub struct HistoryRules {
    /// Per contact rule: whether it selects each offer.
    rule_selects: Vec<Vec<bool>>,
    /// Per conflict: whether selector B selects each offer.
    b_selects: Vec<Vec<bool>>,
}

impl HistoryRules {
    /// The selections of `problem`'s contact rules and conflicts.
    pub fn new(problem: &Problem) -> Self {
        let per_offer = |sel: &crate::model::Selector| -> Vec<bool> { (0..problem.offers.len() as OfferIx).map(|o| problem.selects(sel, o)).collect() };
        HistoryRules {
            rule_selects: problem.contact_rules.iter().map(|r| per_offer(&r.selector)).collect(),
            b_selects: problem.conflicts.iter().map(|f| per_offer(&f.b)).collect(),
        }
    }

    /// Room rule `rule` leaves customer `c` after its history: `max(0, bound - h[c])`.
    pub fn room(&self, problem: &Problem, rule: usize, c: CustomerIx) -> f64 {
        problem.contact_rules[rule].room(problem.history_of(c))
    }

    /// Why customer `c`'s history excludes offer `o`, if it does: the first
    /// exhausted rule in file order, else the first conflict a past contact opens.
    pub fn exclusion(&self, problem: &Problem, c: CustomerIx, o: OfferIx) -> Option<HistoryExclusion> {
        let policies = Policies { rules: &problem.contact_rules, conflicts: &problem.conflicts };
        // No room left at all (a fractional room is a customer row's right-hand side).
        policies.first_block(|i| self.rule_selects[i][o as usize], |j| self.b_selects[j][o as usize], problem.history_of(c), problem.contact_date_of(o), f64::MIN_POSITIVE)
    }
}

/// A set of contact policies, wherever they are held: the planner's
/// [`Problem`], or the snapshot a plan version keeps for the decision service.
#[derive(Debug, Clone, Copy)]
pub struct Policies<'a> {
    /// The `max_per_customer` rules.
    pub rules: &'a [ContactRule],
    /// The conflicts.
    pub conflicts: &'a [Conflict],
}

impl Policies<'_> {
    /// The one statement of when contacts already made forbid a new contact on
    /// `date` (the planner's history exclusions, the service's live check):
    /// the first rule in file order that selects it (`rule_selects`) and whose
    /// matching contacts leave less than `room_needed` of its bound, else the
    /// first conflict whose later selector selects it (`b_selects`) while a
    /// contact its earlier selector matches opened a window around `date`.
    pub fn first_block(
        &self,
        rule_selects: impl Fn(usize) -> bool,
        b_selects: impl Fn(usize) -> bool,
        contacts: &[PastContact],
        date: chrono::NaiveDate,
        room_needed: f64,
    ) -> Option<HistoryExclusion> {
        for (i, rule) in self.rules.iter().enumerate() {
            // (`room` is at least 0 and `room_needed` positive: the clamp changes nothing here.)
            if rule_selects(i) && rule.room(contacts) < room_needed {
                return Some(HistoryExclusion::Rule(i as u32));
            }
        }
        for (j, conflict) in self.conflicts.iter().enumerate() {
            if b_selects(j) && contacts.iter().any(|h| h.selected_by(&conflict.a) && conflict.within(h.date, date)) {
                return Some(HistoryExclusion::Conflict(j as u32));
            }
        }
        None
    }
}

/// Every customer's policy rows over its candidates, CSR by customer; members
/// are offsets from the customer's first candidate. Empty (no storage per
/// customer) when the problem has no contact policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerRows {
    /// `row_start[c]..row_start[c + 1]` are customer `c`'s rows (empty: none anywhere).
    row_start: Vec<u32>,
    /// What each row stands for.
    pub kind: Vec<PolicyRow>,
    /// Right-hand side of each row (`sum x <= rhs`).
    pub rhs: Vec<f64>,
    member_start: Vec<u32>,
    members: Vec<u32>,
}

impl CustomerRows {
    /// The rows that can bind of every customer of a candidate set given as
    /// its CSR by customer (`customer_start`) and its offers (sorted within a
    /// customer), as `Candidates` holds them.
    pub fn build(problem: &Problem, customer_start: &[u32], offer: &[OfferIx]) -> Self {
        if !problem.has_contact_policies() || offer.is_empty() {
            return CustomerRows::default();
        }
        let rules = HistoryRules::new(problem);
        let partners = conflict_partners(problem);
        let n = problem.customers.len();
        let mut out = CustomerRows { row_start: Vec::with_capacity(n + 1), member_start: vec![0], ..CustomerRows::default() };
        out.row_start.push(0);
        let mut members: Vec<u32> = Vec::new();
        for c in 0..n as CustomerIx {
            let range = customer_start[c as usize] as usize..customer_start[c as usize + 1] as usize;
            let first = range.start;
            if !range.is_empty() {
                for (i, selects) in rules.rule_selects.iter().enumerate() {
                    members.clear();
                    members.extend(range.clone().filter(|&k| selects[offer[k] as usize]).map(|k| (k - first) as u32));
                    let room = rules.room(problem, i, c);
                    // A rule with no more selected candidates than room cannot bind.
                    if members.len() as f64 > room {
                        out.push(PolicyRow::Rule(i as u32), room, &members);
                    }
                }
                // Candidates are sorted by offer: find each conflicting partner by search.
                let offers = &offer[range.clone()];
                for (i, &a) in offers.iter().enumerate() {
                    for &(b, j) in partners.get(&a).map(Vec::as_slice).unwrap_or(&[]) {
                        if b > a {
                            if let Ok(pos) = offers.binary_search(&b) {
                                out.push(PolicyRow::Conflict(j), 1.0, &[i as u32, pos as u32]);
                            }
                        }
                    }
                }
            }
            out.row_start.push(out.kind.len() as u32);
        }
        out
    }

    /// Appends customer `c`'s rows of `from` as this set's next customer (a
    /// partition's rows, by local customer index).
    pub fn push_customer_of(&mut self, from: &CustomerRows, c: usize) {
        if from.row_start.is_empty() {
            return;
        }
        self.push_customer(from.of_customer(c).map(|r| (from.kind[r], from.rhs[r], from.members(r))));
    }

    /// Appends the next customer with its rows (kind, right-hand side,
    /// members as offsets from its first candidate): how rows read back from
    /// a partition file are rebuilt.
    pub fn push_customer<'a>(&mut self, rows: impl IntoIterator<Item = (PolicyRow, f64, &'a [u32])>) {
        if self.row_start.is_empty() {
            self.row_start.push(0);
            self.member_start.push(0);
        }
        for (kind, rhs, members) in rows {
            self.push(kind, rhs, members);
        }
        self.row_start.push(self.kind.len() as u32);
    }

    /// Number of customers the rows are kept for (0 when there are none anywhere).
    pub fn customers(&self) -> usize {
        self.row_start.len().saturating_sub(1)
    }

    fn push(&mut self, kind: PolicyRow, rhs: f64, members: &[u32]) {
        self.kind.push(kind);
        self.rhs.push(rhs);
        self.members.extend_from_slice(members);
        self.member_start.push(self.members.len() as u32);
    }

    /// Whether no customer has a row.
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Number of rows over all customers.
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    /// The customer a row belongs to.
    pub fn customer_of(&self, row: usize) -> usize {
        self.row_start.partition_point(|&start| start as usize <= row) - 1
    }

    /// Customer `c`'s rows (global row indices).
    pub fn of_customer(&self, c: usize) -> Range<usize> {
        if self.row_start.is_empty() {
            return 0..0;
        }
        self.row_start[c] as usize..self.row_start[c + 1] as usize
    }

    /// The rows candidate `k` (global index, of customer `c`, in a candidate
    /// set whose CSR by customer is `customer_start`) is a member of.
    pub fn rows_with(&self, customer_start: &[u32], c: usize, k: usize) -> impl Iterator<Item = usize> + '_ {
        let offset = (k - customer_start[c] as usize) as u32;
        self.of_customer(c).filter(move |&r| self.members(r).contains(&offset))
    }

    /// Row `row`'s members, as offsets from its customer's first candidate.
    pub fn members(&self, row: usize) -> &[u32] {
        &self.members[self.member_start[row] as usize..self.member_start[row + 1] as usize]
    }
}

/// For every offer, the offers it conflicts with and the first conflict that
/// says so (both directions; a pair is one row whichever conflict names it).
fn conflict_partners(problem: &Problem) -> HashMap<OfferIx, Vec<(OfferIx, u32)>> {
    let n = problem.offers.len() as OfferIx;
    let mut first: HashMap<(OfferIx, OfferIx), u32> = HashMap::new();
    for (j, conflict) in problem.conflicts.iter().enumerate() {
        let a_side: Vec<OfferIx> = (0..n).filter(|&o| problem.selects(&conflict.a, o)).collect();
        let b_side: Vec<OfferIx> = (0..n).filter(|&o| problem.selects(&conflict.b, o)).collect();
        for &a in &a_side {
            for &b in b_side.iter().filter(|&&b| b != a) {
                if conflict.within(problem.contact_date_of(a), problem.contact_date_of(b)) {
                    first.entry((a.min(b), a.max(b))).or_insert(j as u32);
                }
            }
        }
    }
    let mut partners: HashMap<OfferIx, Vec<(OfferIx, u32)>> = HashMap::new();
    for (&(a, b), &j) in &first {
        partners.entry(a).or_default().push((b, j));
        partners.entry(b).or_default().push((a, j));
    }
    for list in partners.values_mut() {
        list.sort_unstable();
    }
    partners
}
