//! A benchmark's targets compared: one round's figures as ratios of the first target's
//! (the bare server), and over several rounds each figure's median with the median and
//! range of its ratios, each taken within its own round.

/// The compared figures of one round: a row per figure, a value per target (the first
/// target, the bare server, is the reference of the ratios).
pub struct Table {
    targets: Vec<String>,
    rows: Vec<Row>,
}

struct Row {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
}

impl Table {
    /// A table of `targets`' figures, the first being the reference of the ratios.
    pub fn new(targets: Vec<String>) -> Self {
        Self {
            targets,
            rows: Vec::new(),
        }
    }

    /// Adds a figure: its name, unit and a value per target.
    pub fn push(&mut self, name: &str, unit: &'static str, values: Vec<f64>) {
        self.rows.push(Row {
            name: name.to_owned(),
            unit,
            values,
        });
    }

    /// Every figure with its ratio to the first target's.
    pub fn print(&self, heading: &str) {
        let Some(reference) = self.targets.first() else {
            return;
        };
        println!("\n== ratios to {reference} ({heading})");
        for row in &self.rows {
            let base = row.values[0].max(1e-9);
            let cells: Vec<String> = (self.targets.iter().zip(&row.values))
                .map(|(t, v)| format!("{t}: {v:.1}{} ({:.2}×)", row.unit, v / base))
                .collect();
            println!("{:<34} {}", row.name, cells.join("   "));
        }
    }
}

/// Each figure's median over the rounds, and the median and range of its ratio to the
/// first target's in the same round.
pub fn print_medians(tables: &[Table]) {
    let first = &tables[0];
    println!(
        "\n== medians over {} rounds (ratio: median [lowest–highest] of the rounds' ratios)",
        tables.len()
    );
    for (r, row) in first.rows.iter().enumerate() {
        let cells: Vec<String> = (first.targets.iter().enumerate())
            .map(|(t, target)| {
                let s = Summary::of(tables, r, t);
                format!(
                    "{target}: {:.1}{} ({:.2}× [{:.2}–{:.2}])",
                    s.value, row.unit, s.ratio, s.lowest, s.highest
                )
            })
            .collect();
        println!("{:<34} {}", row.name, cells.join("   "));
    }
}

/// One figure of one target over the rounds.
#[derive(Debug, PartialEq)]
struct Summary {
    /// The median value.
    value: f64,
    /// The median of the rounds' ratios to the first target's value.
    ratio: f64,
    lowest: f64,
    highest: f64,
}

impl Summary {
    /// Row `row`, target `target` of `tables` (one per round, alike in shape).
    fn of(tables: &[Table], row: usize, target: usize) -> Self {
        let values = tables.iter().map(|table| table.rows[row].values[target]);
        let ratios = tables.iter().map(|table| {
            let values = &table.rows[row].values;
            values[target] / values[0].max(1e-9)
        });
        let ratios = sorted(ratios.collect());
        Self {
            value: median(values.collect()),
            ratio: middle(&ratios),
            lowest: ratios.first().copied().unwrap_or_default(),
            highest: ratios.last().copied().unwrap_or_default(),
        }
    }
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: Vec<f64>) -> f64 {
    middle(&sorted(values))
}

/// The median of `values`, already sorted.
fn middle(values: &[f64]) -> f64 {
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The order in which round `round` measures `count` targets (indices into them): each
/// round starts one target further on, so over `count` rounds each target has gone
/// first, second, …, and a machine that slows down or speeds up within a round favours
/// none of them.
pub fn order(round: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |i| (i + round) % count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_takes_each_turn_once_over_as_many_rounds() {
        let rounds: Vec<Vec<usize>> = (0..3).map(|round| order(round, 3).collect()).collect();
        assert_eq!(rounds, [[0, 1, 2], [1, 2, 0], [2, 0, 1]]);
        for turn in 0..3 {
            let mut at_turn: Vec<usize> = rounds.iter().map(|round| round[turn]).collect();
            at_turn.sort_unstable();
            assert_eq!(at_turn, [0, 1, 2]);
        }
        assert_eq!(order(5, 1).collect::<Vec<_>>(), [0]);
        assert_eq!(order(0, 0).count(), 0);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn medians_take_each_rounds_ratio_within_the_round() {
        let table = |bare: f64, natter: f64| {
            let mut table = Table::new(vec!["bare".into(), "sqlite".into()]);
            table.push("x", "", vec![bare, natter]);
            table
        };
        // A slow round doubles both figures and keeps its ratio; the ratio of the
        // medians (3.0 / 2.0) would say 1.5 where two rounds of three say 2.0.
        let tables = [table(1.0, 2.0), table(4.0, 8.0), table(2.0, 3.0)];
        let summary = Summary::of(&tables, 0, 1);
        assert_eq!(
            summary,
            Summary {
                value: 3.0,
                ratio: 2.0,
                lowest: 1.5,
                highest: 2.0
            }
        );
        assert_eq!(Summary::of(&tables, 0, 0).ratio, 1.0);
    }
}
