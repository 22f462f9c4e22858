//! The period of a sales history: daily, weekly, monthly, quarterly or
//! yearly, inferred from its dates or given, and the calendar that numbers
//! periods and turns them back into days.
//!
//! Conventions: a daily row is its day; a weekly row is the seven days
//! starting on its date (every weekly date of a history falls on the same
//! weekday); monthly, quarterly and yearly rows are the calendar month,
//! quarter (January, April, July, October) or year that contains the date,
//! so month-end and month-start dates both work.

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How often a history records sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Frequency {
    /// One value a day.
    Daily,
    /// One value a week.
    Weekly,
    /// One value a calendar month.
    Monthly,
    /// One value a calendar quarter.
    Quarterly,
    /// One value a calendar year.
    Yearly,
}

/// Why a history's frequency could not be told.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FrequencyError {
    /// The dates fit no frequency.
    #[error("irregular dates ({}): not one value per day, week, month, quarter or year", list(.0))]
    Irregular(Vec<NaiveDate>),
    /// Two dates fall in one period of the frequency asked for.
    #[error("dates {0} and {1} fall in one {2} period")]
    SamePeriod(NaiveDate, NaiveDate, &'static str),
    /// A weekly date off the history's weekday.
    #[error("date {0} is not a whole number of weeks from {1}")]
    OffWeek(NaiveDate, NaiveDate),
}

fn list(dates: &[NaiveDate]) -> String {
    dates.iter().map(NaiveDate::to_string).collect::<Vec<_>>().join(", ")
}

impl Frequency {
    /// Every frequency, coarsest first (the order inference tries them in).
    pub const COARSEST_FIRST: [Frequency; 5] = [Frequency::Yearly, Frequency::Quarterly, Frequency::Monthly, Frequency::Weekly, Frequency::Daily];

    /// The season length the models use: a week of days, a year of weeks,
    /// months or quarters; none for yearly data.
    pub fn season(self) -> usize {
        match self {
            Frequency::Daily => 7,
            Frequency::Weekly => 52,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
            Frequency::Yearly => 1,
        }
    }

    /// Periods held out for the accuracy report by default: four weeks of
    /// days, a quarter of weeks, a year of months, quarters; three years.
    pub fn default_holdout(self) -> usize {
        match self {
            Frequency::Daily => 28,
            Frequency::Weekly => 13,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
            Frequency::Yearly => 3,
        }
    }

    /// The one-letter code (`D`, `W`, `M`, `Q`, `Y`).
    pub fn code(self) -> &'static str {
        match self {
            Frequency::Daily => "D",
            Frequency::Weekly => "W",
            Frequency::Monthly => "M",
            Frequency::Quarterly => "Q",
            Frequency::Yearly => "Y",
        }
    }

    /// The word in messages.
    pub fn word(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Quarterly => "quarterly",
            Frequency::Yearly => "yearly",
        }
    }

    /// Parses a code or word (`M`, `monthly`; any case).
    pub fn parse(text: &str) -> Option<Frequency> {
        let t = text.trim().to_ascii_lowercase();
        Frequency::COARSEST_FIRST.into_iter().find(|f| t == f.code().to_ascii_lowercase() || t == f.word())
    }

    /// Infers the frequency of one series' dates (sorted, distinct): the
    /// coarsest frequency that puts every date in a period of its own, on
    /// the calendar anchored at `anchor`, with some two dates one period apart.
    /// `None` for fewer than two dates (nothing to tell).
    pub fn infer(dates: &[NaiveDate], anchor: NaiveDate) -> Result<Option<Frequency>, FrequencyError> {
        if dates.len() < 2 {
            return Ok(None);
        }
        for frequency in Frequency::COARSEST_FIRST {
            let calendar = Calendar { frequency, anchor };
            let Ok(indices) = dates.iter().map(|d| calendar.index(*d)).collect::<Result<Vec<i64>, _>>() else { continue };
            let gaps: Vec<i64> = indices.windows(2).map(|w| w[1] - w[0]).collect();
            if gaps.iter().all(|g| *g >= 1) && gaps.contains(&1) {
                return Ok(Some(frequency));
            }
        }
        Err(FrequencyError::Irregular(dates.iter().take(4).copied().collect()))
    }
}

/// Numbers the periods of a frequency from an anchor date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// The frequency.
    pub frequency: Frequency,
    /// Weekly periods start on this date's weekday; daily ones count from it.
    pub anchor: NaiveDate,
}

fn month_number(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn first_of_month(month: i64) -> NaiveDate {
    let (year, month0) = (month.div_euclid(12), month.rem_euclid(12));
    NaiveDate::from_ymd_opt(year as i32, month0 as u32 + 1, 1).unwrap_or(NaiveDate::MIN)
}

impl Calendar {
    /// The period index of a date; an error for a weekly date off the anchor's weekday.
    pub fn index(&self, date: NaiveDate) -> Result<i64, FrequencyError> {
        let days = (date - self.anchor).num_days();
        Ok(match self.frequency {
            Frequency::Daily => days,
            Frequency::Weekly => {
                if days.rem_euclid(7) != 0 {
                    return Err(FrequencyError::OffWeek(date, self.anchor));
                }
                days.div_euclid(7)
            }
            Frequency::Monthly => month_number(date),
            Frequency::Quarterly => month_number(date).div_euclid(3),
            Frequency::Yearly => i64::from(date.year()),
        })
    }

    /// The first day of period `index`.
    pub fn start(&self, index: i64) -> NaiveDate {
        match self.frequency {
            Frequency::Daily => self.anchor + chrono::Duration::days(index),
            Frequency::Weekly => self.anchor + chrono::Duration::days(7 * index),
            Frequency::Monthly => first_of_month(index),
            Frequency::Quarterly => first_of_month(3 * index),
            Frequency::Yearly => first_of_month(12 * index),
        }
    }

    /// The days of period `index`.
    pub fn days(&self, index: i64) -> u64 {
        (self.start(index + 1) - self.start(index)).num_days().max(1) as u64
    }

    /// Each day from `first` on, `count` days: the period it falls in, for
    /// spreading a period's forecast over its days.
    pub fn periods_of_days(&self, first: NaiveDate, count: usize) -> Result<Vec<i64>, FrequencyError> {
        (0..count as u64).map(|k| self.index_of_day(first + Days::new(k))).collect()
    }

    /// The period containing a day (a weekly period is the seven days from its start).
    pub fn index_of_day(&self, day: NaiveDate) -> Result<i64, FrequencyError> {
        match self.frequency {
            Frequency::Weekly => Ok((day - self.anchor).num_days().div_euclid(7)),
            _ => self.index(day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn infer(dates: &[&str]) -> Result<Option<Frequency>, FrequencyError> {
        let dates: Vec<NaiveDate> = dates.iter().map(|d| date(d)).collect();
        Frequency::infer(&dates, dates[0])
    }

    #[test]
    fn each_frequency_is_told_from_its_dates() {
        assert_eq!(infer(&["2024-03-01", "2024-03-02", "2024-03-04"]), Ok(Some(Frequency::Daily)));
        assert_eq!(infer(&["2024-03-04", "2024-03-11", "2024-03-25"]), Ok(Some(Frequency::Weekly)));
        // Month ends (28 to 31 days apart) and month starts are both monthly.
        assert_eq!(infer(&["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]), Ok(Some(Frequency::Monthly)));
        assert_eq!(infer(&["2023-11-01", "2023-12-01", "2024-01-01"]), Ok(Some(Frequency::Monthly)));
        assert_eq!(infer(&["2023-03-31", "2023-06-30", "2023-09-30", "2023-12-31"]), Ok(Some(Frequency::Quarterly)));
        assert_eq!(infer(&["2019-01-01", "2020-01-01", "2021-01-01", "2023-01-01"]), Ok(Some(Frequency::Yearly)));
        assert_eq!(infer(&["2024-03-01"]), Ok(None));
    }

    #[test]
    fn irregular_dates_are_an_error_naming_them() {
        let err = infer(&["2024-01-01", "2024-01-15", "2024-02-03"]).expect_err("irregular");
        assert!(err.to_string().contains("2024-01-15"), "{err}");
        // Ten days apart: no frequency has them one period apart.
        assert!(infer(&["2024-01-01", "2024-01-11", "2024-01-21"]).is_err());
    }

    #[test]
    fn the_calendar_spreads_periods_over_their_days() {
        let monthly = Calendar { frequency: Frequency::Monthly, anchor: date("2024-01-31") };
        let feb = monthly.index(date("2024-02-10")).expect("index");
        assert_eq!((monthly.start(feb), monthly.days(feb)), (date("2024-02-01"), 29));
        let quarterly = Calendar { frequency: Frequency::Quarterly, anchor: date("2024-01-01") };
        assert_eq!(quarterly.days(quarterly.index(date("2024-05-20")).expect("index")), 91);
        let weekly = Calendar { frequency: Frequency::Weekly, anchor: date("2024-03-04") };
        assert_eq!(weekly.periods_of_days(date("2024-03-09"), 4).expect("days"), vec![0, 0, 1, 1]);
        assert!(weekly.index(date("2024-03-05")).is_err());
    }
}
