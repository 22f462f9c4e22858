//! The shape shared by the families that cap expected acceptances per entity:
//! an offer's redemptions, a zone's delivery capacity. Each has one row per
//! capped entity and coefficient 1 per expected acceptance of a cell of that
//! entity; they differ only in what [`CapSpec`] declares, so each family's
//! module is a declaration and the logic is written here once.

use super::family::{Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::Problem;

/// What a capped row is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// One row per offer: acceptances of that offer in every zone.
    Offer,
    /// One row per zone: acceptances of every offer in that zone.
    Zone,
}

impl Entity {
    fn count(self, problem: &Problem) -> usize {
        match self {
            Entity::Offer => problem.offers.len(),
            Entity::Zone => problem.zones.len(),
        }
    }

    fn id(self, problem: &Problem, e: usize) -> &str {
        match self {
            Entity::Offer => &problem.offers[e].id,
            Entity::Zone => &problem.zones[e].id,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Entity::Offer => "offer",
            Entity::Zone => "zone",
        }
    }

    fn of_cell(self, offer: usize, zone: usize) -> usize {
        match self {
            Entity::Offer => offer,
            Entity::Zone => zone,
        }
    }

    fn of_candidate(self, problem: &Problem, cands: &Candidates, k: usize) -> usize {
        match self {
            Entity::Offer => cands.offer[k] as usize,
            Entity::Zone => problem.customers.zone[cands.customer[k] as usize] as usize,
        }
    }
}

/// The declaration of one acceptance-cap family.
#[derive(Debug)]
pub struct CapSpec {
    /// The family's name (reasons, KPIs, checker, marginal values).
    pub name: &'static str,
    /// What each row counts over.
    pub entity: Entity,
    /// The entity's cap in the problem, if it has one.
    pub cap: fn(&Problem, usize) -> Option<f64>,
    /// Where its prices are stored, per entity.
    pub prices: fn(&ShadowPrices) -> &Vec<f64>,
    /// The same field, to write.
    pub prices_mut: fn(&mut ShadowPrices) -> &mut Vec<f64>,
}

/// An acceptance-cap family over one problem: the capped entities in entity order.
#[derive(Debug, Clone)]
pub struct AcceptanceCap {
    spec: &'static CapSpec,
    /// The entity of each row.
    entity: Vec<u32>,
    /// Each row's cap.
    cap: Vec<f64>,
    /// Row of each entity, if capped.
    row_of: Vec<Option<usize>>,
}

impl AcceptanceCap {
    /// One row per entity of `problem` that `spec` finds a cap for.
    pub fn new(spec: &'static CapSpec, problem: &Problem) -> Self {
        let n = spec.entity.count(problem);
        let (mut entity, mut cap, mut row_of) = (Vec::new(), Vec::new(), vec![None; n]);
        for (e, slot) in row_of.iter_mut().enumerate() {
            if let Some(c) = (spec.cap)(problem, e) {
                *slot = Some(entity.len());
                entity.push(e as u32);
                cap.push(c);
            }
        }
        AcceptanceCap { spec, entity, cap, row_of }
    }
}

impl Family for AcceptanceCap {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn rows(&self) -> usize {
        self.entity.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        self.cap[row]
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        self.spec.entity.id(problem, self.entity[row] as usize).to_string()
    }

    fn per_accept(&self, offer: usize, zone: usize, push: &mut dyn FnMut(usize, f64)) {
        if let Some(r) = self.row_of[self.spec.entity.of_cell(offer, zone)] {
            push(r, 1.0);
        }
    }

    /// The spec's rule "expected acceptances per entity at most its cap",
    /// counted from the candidates and the problem's own caps (not the rows).
    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let entity = self.spec.entity;
        let mut accepted = vec![0.0; entity.count(problem)];
        for k in 0..cands.len() {
            accepted[entity.of_candidate(problem, cands, k)] += cands.p[k] * alloc.x[k];
        }
        for (e, &a) in accepted.iter().enumerate() {
            if let Some(cap) = (self.spec.cap)(problem, e) {
                ck.le(self.spec.name, a, cap, || format!("{} {}", entity.noun(), entity.id(problem, e)));
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        let per_entity = (self.spec.prices_mut)(out);
        for (&e, &p) in self.entity.iter().zip(prices) {
            per_entity[e as usize] = p;
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        let per_entity = (self.spec.prices)(from);
        for (&e, v) in self.entity.iter().zip(out) {
            *v = per_entity.get(e as usize).copied().unwrap_or(0.0);
        }
    }
}
