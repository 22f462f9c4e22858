//! Redemptions: an offer's expected acceptances are at most its cap.

use super::acceptance_cap::{AcceptanceCap, CapSpec, Entity};
use crate::model::Problem;

/// The family's name.
pub const NAME: &str = "redemptions";

/// One row per offer with a redemption cap, in offer order; prices per offer.
pub static SPEC: CapSpec = CapSpec {
    name: NAME,
    entity: Entity::Offer,
    cap: |problem, offer| problem.offers[offer].max_redemptions,
    prices: |p| &p.redemptions,
    prices_mut: |p| &mut p.redemptions,
};

/// The family over `problem`'s capped offers.
pub fn family(problem: &Problem) -> AcceptanceCap {
    AcceptanceCap::new(&SPEC, problem)
}
