//! The row builders of one chunk of the corpus: one [`TableBuilder`] per source table (schemas
//! from the registry) and per oracle table, each with its typed column handles.

use arrow::array::RecordBatch;

use super::oracle;
use crate::builder::*;
use crate::error::Result;
use crate::schema::Registry;
use crate::table_columns;

/// A table's builder and its column handles.
pub struct Tb<C> {
    pub b: TableBuilder,
    pub c: C,
}

impl<C> Tb<C> {
    pub fn new(b: TableBuilder, f: fn(&TableBuilder) -> Result<C>) -> Result<Self> {
        let c = f(&b)?;
        Ok(Tb { b, c })
    }
}

table_columns! { pub struct Accounts {
    account_id: StrCol, account_name: StrCol, domain: StrCol, segment: StrCol, vertical: StrCol, geo: StrCol,
    employee_count: I64Col, annual_revenue_usd: DecCol, acquisition_channel: StrCol, signup_date: DateCol,
    owner_rep_id: StrCol, am_rep_id: StrCol, csm_rep_id: StrCol, archetype: StrCol, updated_at: TsCol,
} }
table_columns! { pub struct Contacts {
    contact_id: StrCol, account_id: StrCol, full_name: StrCol, title: StrCol, persona: StrCol, email: StrCol,
    active_from: DateCol, active_to: DateCol, updated_at: TsCol,
} }
table_columns! { pub struct Reps {
    rep_id: StrCol, full_name: StrCol, role: StrCol, segment: StrCol, geo: StrCol, hire_date: DateCol,
    end_date: DateCol, annual_quota_usd: DecCol,
} }
table_columns! { pub struct Opportunities {
    opp_id: StrCol, account_id: StrCol, owner_rep_id: StrCol, opp_type: StrCol, stage: StrCol, amount_usd: DecCol,
    created_date: DateCol, close_date: DateCol, forecast_category: StrCol, loss_reason: StrCol, competitor: StrCol,
    updated_at: TsCol,
} }
table_columns! { pub struct Orders {
    order_id: StrCol, account_id: StrCol, opp_id: StrCol, order_date: DateCol, term_start: DateCol, term_end: DateCol,
    status: StrCol, amends_order_id: StrCol, billing_frequency: StrCol,
} }
table_columns! { pub struct OrderLines {
    order_line_id: StrCol, order_id: StrCol, account_id: StrCol, sku_id: StrCol, sku_type: StrCol, quantity: I64Col,
    unit_price_usd: DecCol, overage_unit_price_usd: DecCol, line_amount_usd: DecCol,
} }
table_columns! { pub struct ServiceMilestones {
    milestone_id: StrCol, order_line_id: StrCol, account_id: StrCol, milestone_name: StrCol, amount_usd: DecCol,
    planned_date: DateCol, completed_date: DateCol, customer_sign_off: BoolCol, sign_off_date: DateCol,
} }
table_columns! { pub struct Usage {
    usage_id: StrCol, account_id: StrCol, sku_id: StrCol, sku_type: StrCol, period_start: TsCol, period_end: TsCol,
    period_granularity: StrCol, units_consumed: F64Col, commit_units: F64Col, overage_units: F64Col,
    unit_price_usd: DecCol, overage_unit_price_usd: DecCol, seat_utilization_pct: F64Col, source_system: StrCol,
    ingest_event_id: StrCol, ingest_batch_id: StrCol, received_at: TsCol, effective_at: TsCol,
    record_version: I32Col, prior_version_id: StrCol, correction_reason: StrCol, audit_status: StrCol,
} }
table_columns! { pub struct Invoices {
    invoice_id: StrCol, account_id: StrCol, order_id: StrCol, invoice_date: DateCol, due_date: DateCol,
    billing_type: StrCol, period_start: DateCol, period_end: DateCol, amount_usd: DecCol, status: StrCol,
} }
table_columns! { pub struct InvoiceLines {
    invoice_line_id: StrCol, invoice_id: StrCol, order_line_id: StrCol, amount_usd: DecCol,
    service_period_start: DateCol, service_period_end: DateCol,
} }
table_columns! { pub struct PaymentEvents {
    event_id: StrCol, invoice_id: StrCol, account_id: StrCol, event_ts: TsCol, event_type: StrCol,
    attempt_number: I32Col, external_event_id: StrCol, amount_usd: DecCol, prior_state: StrCol, new_state: StrCol,
} }
table_columns! { pub struct FeatureEngagement {
    account_id: StrCol, week_start: DateCol, feature_id: StrCol, feature_category: StrCol, active_users: I64Col,
    events: I64Col, teams_active: I64Col,
} }
table_columns! { pub struct Conversations {
    conv_id: StrCol, account_id: StrCol, owner_rep_id: StrCol, call_ts: TsCol, call_owner_role: StrCol,
    duration_minutes: I32Col, attendee_contact_ids: ListCol, sentiment_score: F64Col, talk_ratio: F64Col,
    next_step_committed: BoolCol, competitors_mentioned: ListCol, objections: ListCol, feature_inquiry: BoolCol,
    summary: StrCol,
} }
table_columns! { pub struct SupportTickets {
    ticket_id: StrCol, account_id: StrCol, opened_at: TsCol, closed_at: TsCol, severity: StrCol, category: StrCol,
    csat_score: F64Col,
} }
table_columns! { pub struct NpsResponses {
    response_id: StrCol, account_id: StrCol, contact_id: StrCol, response_date: DateCol, score: I32Col,
    verbatim: StrCol,
} }
table_columns! { pub struct QbrLog {
    qbr_id: StrCol, account_id: StrCol, owner_rep_id: StrCol, scheduled_date: DateCol, held_date: DateCol,
    status: StrCol, exec_sponsor_attended: BoolCol, attendee_contact_ids: ListCol, summary: StrCol,
} }
table_columns! { pub struct OnboardingLog {
    account_id: StrCol, milestone: StrCol, milestone_name: StrCol, planned_date: DateCol, completed_date: DateCol,
    status: StrCol,
} }
table_columns! { pub struct TechnicalMilestones {
    tech_milestone_id: StrCol, account_id: StrCol, milestone: StrCol, planned_date: DateCol,
    completed_date: DateCol, customer_sign_off: BoolCol,
} }
table_columns! { pub struct CadenceEvents {
    event_id: StrCol, account_id: StrCol, contact_id: StrCol, sequence_type: StrCol, channel: StrCol,
    event_ts: TsCol, event_type: StrCol, suppressed_reason: StrCol, play_id: StrCol,
} }
table_columns! { pub struct GtmSpend {
    month: DateCol, channel: StrCol, category: StrCol, segment: StrCol, amount_usd: DecCol,
} }
table_columns! { pub struct Financials {
    quarter_start: DateCol, revenue_usd: DecCol, gross_margin_pct: F64Col, ebitda_usd: DecCol, fcf_usd: DecCol,
    operating_income_usd: DecCol,
} }
table_columns! { pub struct FpaPlan {
    plan_version: StrCol, reforecast_as_of_date: DateCol, is_board_plan: BoolCol, period_start: DateCol,
    period_grain: StrCol, segment: StrCol, metric_name: StrCol, target_value: F64Col,
} }
table_columns! { pub struct PriceTests {
    test_id: StrCol, segment: StrCol, sku_id: StrCol, start_date: DateCol, end_date: DateCol,
    list_price_usd: DecCol, price_change_pct: F64Col, control_accounts: I64Col, control_seats: I64Col,
    test_accounts: I64Col, test_seats: I64Col,
} }
table_columns! { pub struct RoutingShadowLog {
    event_id: StrCol, routed_at: TsCol, segment: StrCol, current_ruleset: StrCol, candidate_ruleset: StrCol,
    current_rep_id: StrCol, candidate_rep_id: StrCol, current_route_seconds: F64Col,
    candidate_route_seconds: F64Col,
} }
table_columns! { pub struct AgentDecisions {
    decision_id: StrCol, decided_at: TsCol, account_id: StrCol, contact_id: StrCol, lane: StrCol,
    action_type: StrCol, experiment_id: StrCol, arm: StrCol, model_version: StrCol, policy_version: StrCol,
    trust_score: F64Col, gate_result: StrCol, cost_usd: DecCol,
} }
table_columns! { pub struct DecisionOutcomes {
    outcome_id: StrCol, decision_id: StrCol, outcome_at: TsCol, outcome_type: StrCol, pipeline_usd: DecCol,
} }
table_columns! { pub struct Restatements {
    restatement_id: StrCol, period_start: DateCol, order_line_id: StrCol, amount_delta_usd: DecCol, reason: StrCol,
    approved_by: StrCol,
} }
table_columns! { pub struct BackendCosts {
    cost_id: StrCol, account_id: StrCol, sku_id: StrCol, month: DateCol, deployment_tier: StrCol, units: F64Col,
    backend_cost_usd: DecCol, received_at: TsCol,
} }
table_columns! { pub struct ReferenceUsage { account_id: StrCol, sku_id: StrCol, month: DateCol, units: F64Col } }
table_columns! { pub struct ReferenceBilling { invoice_id: StrCol, amount_usd: DecCol } }
table_columns! { pub struct ReferenceGl { month: DateCol, deferred_revenue_usd: DecCol } }

table_columns! { pub struct OracleAccounts {
    account_id: StrCol, archetype: StrCol, segment: StrCol, first_term_start: DateCol, churn_date: DateCol,
    champion_contact_id: StrCol, champion_departure_date: DateCol, spike_start: DateCol, spike_end: DateCol,
    spike_multiplier: F64Col, crash_level: F64Col, season_period_days: I32Col, canary_arm: StrCol,
} }
table_columns! { pub struct OracleMargin {
    account_id: StrCol, event: StrCol, effective_date: DateCol, deployment_tier: StrCol, magnitude: F64Col,
} }
table_columns! { pub struct OracleFaults {
    fault_class: StrCol, table_name: StrCol, key_column: StrCol, key: StrCol, expected: StrCol, detail: StrCol,
    month: DateCol,
} }

/// Source tables written per chunk of accounts, in output order.
pub const CHUNK_TABLES: [&str; 26] = [
    "accounts",
    "contacts",
    "opportunities",
    "orders",
    "order_lines",
    "service_milestones",
    "usage_metering_log",
    "backend_costs",
    "invoices",
    "invoice_lines",
    "payment_events",
    "feature_engagement",
    "conversations",
    "support_tickets",
    "nps_responses",
    "qbr_log",
    "onboarding_log",
    "technical_milestones",
    "cadence_events",
    "agent_decisions",
    "decision_outcomes",
    "restatements",
    "reference_usage",
    "reference_billing",
    "oracle/accounts",
    "oracle/margin",
];

/// Every builder of one chunk.
pub struct Tables {
    pub accounts: Tb<Accounts>,
    pub contacts: Tb<Contacts>,
    pub opportunities: Tb<Opportunities>,
    pub orders: Tb<Orders>,
    pub order_lines: Tb<OrderLines>,
    pub service_milestones: Tb<ServiceMilestones>,
    pub usage: Tb<Usage>,
    pub backend_costs: Tb<BackendCosts>,
    pub invoices: Tb<Invoices>,
    pub invoice_lines: Tb<InvoiceLines>,
    pub payment_events: Tb<PaymentEvents>,
    pub feature_engagement: Tb<FeatureEngagement>,
    pub conversations: Tb<Conversations>,
    pub support_tickets: Tb<SupportTickets>,
    pub nps: Tb<NpsResponses>,
    pub qbr: Tb<QbrLog>,
    pub onboarding: Tb<OnboardingLog>,
    pub tech: Tb<TechnicalMilestones>,
    pub cadence: Tb<CadenceEvents>,
    pub decisions: Tb<AgentDecisions>,
    pub outcomes: Tb<DecisionOutcomes>,
    pub restatements: Tb<Restatements>,
    pub ref_usage: Tb<ReferenceUsage>,
    pub ref_billing: Tb<ReferenceBilling>,
    pub oracle_accounts: Tb<OracleAccounts>,
    pub oracle_margin: Tb<OracleMargin>,
    pub oracle_faults: Tb<OracleFaults>,
}

pub fn builder(reg: &Registry, table: &str) -> Result<TableBuilder> {
    if let Some(schema) = oracle::schema(table) {
        return TableBuilder::new(table, schema);
    }
    TableBuilder::new(table, reg.expect_table(table)?.arrow_schema())
}

impl Tables {
    pub fn new(reg: &Registry) -> Result<Tables> {
        Ok(Tables {
            accounts: Tb::new(builder(reg, "accounts")?, Accounts::new)?,
            contacts: Tb::new(builder(reg, "contacts")?, Contacts::new)?,
            opportunities: Tb::new(builder(reg, "opportunities")?, Opportunities::new)?,
            orders: Tb::new(builder(reg, "orders")?, Orders::new)?,
            order_lines: Tb::new(builder(reg, "order_lines")?, OrderLines::new)?,
            service_milestones: Tb::new(
                builder(reg, "service_milestones")?,
                ServiceMilestones::new,
            )?,
            usage: Tb::new(builder(reg, "usage_metering_log")?, Usage::new)?,
            backend_costs: Tb::new(builder(reg, "backend_costs")?, BackendCosts::new)?,
            invoices: Tb::new(builder(reg, "invoices")?, Invoices::new)?,
            invoice_lines: Tb::new(builder(reg, "invoice_lines")?, InvoiceLines::new)?,
            payment_events: Tb::new(builder(reg, "payment_events")?, PaymentEvents::new)?,
            feature_engagement: Tb::new(
                builder(reg, "feature_engagement")?,
                FeatureEngagement::new,
            )?,
            conversations: Tb::new(builder(reg, "conversations")?, Conversations::new)?,
            support_tickets: Tb::new(builder(reg, "support_tickets")?, SupportTickets::new)?,
            nps: Tb::new(builder(reg, "nps_responses")?, NpsResponses::new)?,
            qbr: Tb::new(builder(reg, "qbr_log")?, QbrLog::new)?,
            onboarding: Tb::new(builder(reg, "onboarding_log")?, OnboardingLog::new)?,
            tech: Tb::new(
                builder(reg, "technical_milestones")?,
                TechnicalMilestones::new,
            )?,
            cadence: Tb::new(builder(reg, "cadence_events")?, CadenceEvents::new)?,
            decisions: Tb::new(builder(reg, "agent_decisions")?, AgentDecisions::new)?,
            outcomes: Tb::new(builder(reg, "decision_outcomes")?, DecisionOutcomes::new)?,
            restatements: Tb::new(builder(reg, "restatements")?, Restatements::new)?,
            ref_usage: Tb::new(builder(reg, "reference_usage")?, ReferenceUsage::new)?,
            ref_billing: Tb::new(builder(reg, "reference_billing")?, ReferenceBilling::new)?,
            oracle_accounts: Tb::new(builder(reg, "oracle/accounts")?, OracleAccounts::new)?,
            oracle_margin: Tb::new(builder(reg, "oracle/margin")?, OracleMargin::new)?,
            oracle_faults: Tb::new(builder(reg, "oracle/faults")?, OracleFaults::new)?,
        })
    }

    /// Finish every builder: (table name, batch) in [`CHUNK_TABLES`] order, then `oracle/faults`.
    pub fn finish(mut self) -> Result<Vec<(&'static str, RecordBatch)>> {
        let t = &mut self;
        let batches = [
            t.accounts.b.finish()?,
            t.contacts.b.finish()?,
            t.opportunities.b.finish()?,
            t.orders.b.finish()?,
            t.order_lines.b.finish()?,
            t.service_milestones.b.finish()?,
            t.usage.b.finish()?,
            t.backend_costs.b.finish()?,
            t.invoices.b.finish()?,
            t.invoice_lines.b.finish()?,
            t.payment_events.b.finish()?,
            t.feature_engagement.b.finish()?,
            t.conversations.b.finish()?,
            t.support_tickets.b.finish()?,
            t.nps.b.finish()?,
            t.qbr.b.finish()?,
            t.onboarding.b.finish()?,
            t.tech.b.finish()?,
            t.cadence.b.finish()?,
            t.decisions.b.finish()?,
            t.outcomes.b.finish()?,
            t.restatements.b.finish()?,
            t.ref_usage.b.finish()?,
            t.ref_billing.b.finish()?,
            t.oracle_accounts.b.finish()?,
            t.oracle_margin.b.finish()?,
        ];
        let mut out: Vec<(&'static str, RecordBatch)> =
            CHUNK_TABLES.iter().copied().zip(batches).collect();
        out.push(("oracle/faults", t.oracle_faults.b.finish()?));
        Ok(out)
    }
}
