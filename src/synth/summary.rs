//! Company-level totals accumulated while accounts are generated, in exact integer cents so
//! that merging chunks in any order gives the same result. The company tables (spend,
//! financials, plan, general ledger) are drawn from them at the end.

use std::collections::BTreeMap;

use super::params::{Archetype, Resolved};

/// Per-month totals, indexed from `month0` (24 months before the window) to the window's last month.
#[derive(Debug, Clone)]
pub struct Summary {
    pub month0: i32,
    /// Recognised recurring revenue (seat + consumption) by segment.
    pub recurring: [Vec<i128>; 3],
    pub services: Vec<i128>,
    /// Invoiced amounts by invoice month.
    pub billed: Vec<i128>,
    /// Restatement deltas by restated month.
    pub restated: Vec<i128>,
    /// New-logo ARR booked, by month × segment × acquisition channel.
    pub new_arr: Vec<[[i128; 5]; 3]>,
    pub archetypes: BTreeMap<Archetype, u64>,
    pub prospects: u64,
    /// Canary: accounts enrolled per arm (control, variant) and decisions per arm.
    pub canary_accounts: [u64; 2],
    pub canary_decisions: [u64; 2],
}

impl Summary {
    pub fn new(p: &Resolved) -> Summary {
        let month0 = p.start.month_index() - 25;
        let len = (p.end.month_index() - month0 + 1) as usize;
        Summary {
            month0,
            recurring: [vec![0; len], vec![0; len], vec![0; len]],
            services: vec![0; len],
            billed: vec![0; len],
            restated: vec![0; len],
            new_arr: vec![[[0; 5]; 3]; len],
            archetypes: BTreeMap::new(),
            prospects: 0,
            canary_accounts: [0; 2],
            canary_decisions: [0; 2],
        }
    }

    pub fn len(&self) -> usize {
        self.billed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.billed.is_empty()
    }

    /// Slot of a month index, if it is inside the tracked range.
    pub fn slot(&self, month: i32) -> Option<usize> {
        let i = month - self.month0;
        (i >= 0 && (i as usize) < self.len()).then_some(i as usize)
    }

    pub fn add_recurring(&mut self, seg: usize, month: i32, cents: i128) {
        if let Some(i) = self.slot(month) {
            self.recurring[seg][i] += cents;
        }
    }

    pub fn add_services(&mut self, month: i32, cents: i128) {
        if let Some(i) = self.slot(month) {
            self.services[i] += cents;
        }
    }

    pub fn add_billed(&mut self, month: i32, cents: i128) {
        if let Some(i) = self.slot(month) {
            self.billed[i] += cents;
        }
    }

    pub fn add_restated(&mut self, month: i32, cents: i128) {
        if let Some(i) = self.slot(month) {
            self.restated[i] += cents;
        }
    }

    pub fn add_arr(&mut self, month: i32, seg: usize, channel: usize, cents: i128) {
        if let Some(i) = self.slot(month) {
            self.new_arr[i][seg][channel] += cents;
        }
    }

    pub fn merge(&mut self, o: &Summary) {
        for s in 0..3 {
            for (a, b) in self.recurring[s].iter_mut().zip(&o.recurring[s]) {
                *a += b;
            }
        }
        for (a, b) in self.services.iter_mut().zip(&o.services) {
            *a += b;
        }
        for (a, b) in self.billed.iter_mut().zip(&o.billed) {
            *a += b;
        }
        for (a, b) in self.restated.iter_mut().zip(&o.restated) {
            *a += b;
        }
        for (a, b) in self.new_arr.iter_mut().zip(&o.new_arr) {
            for s in 0..3 {
                for c in 0..5 {
                    a[s][c] += b[s][c];
                }
            }
        }
        for (k, v) in &o.archetypes {
            *self.archetypes.entry(*k).or_default() += v;
        }
        self.prospects += o.prospects;
        for i in 0..2 {
            self.canary_accounts[i] += o.canary_accounts[i];
            self.canary_decisions[i] += o.canary_decisions[i];
        }
    }

    /// Total recognised revenue (recurring + services) of a slot.
    pub fn revenue(&self, slot: usize) -> i128 {
        self.recurring.iter().map(|v| v[slot]).sum::<i128>() + self.services[slot]
    }
}
