-- The accounts the Tier-1 scores judge (SPEC §9), one row per customer × score date. Score
-- dates are the build's as_of and each week before it, var('score_history_weeks') in all, so
-- every log carries the history its deltas, tier transitions and alerts compare against. A
-- score dated t sees only what happened before t. An account is a customer at t when an active
-- order covers the day before t; its renewal is the earliest term end among those orders.
-- bucket_base: the week index (0 = the 7 days before as_of) weekly inputs are aggregated by.
{{ config(tags=['scores'], order_by=['account_id', 'k']) }}

with calendar as (
    select
        arrow_cast(k, 'Int32') as k,
        date_of_day_number(day_number({{ as_of_date }}) - 7 * k) as score_date
    from (select unnest(generate_series(0, {{ var('score_history_weeks') }} - 1)) as k) t
),

terms as (
    select account_id, term_start, term_end
    from {{ source('snapshot', 'orders') }}
    where status = 'active' and term_end > term_start
),

first_terms as (
    select account_id, min(term_start) as first_term_start
    from terms
    group by account_id
),

covering as (
    select
        t.account_id,
        c.k,
        c.score_date,
        min(t.term_end) as renewal_date
    from calendar c
    join terms t on t.term_start < c.score_date and t.term_end >= c.score_date
    group by t.account_id, c.k, c.score_date
),

final as (
    select
        c.account_id,
        c.k,
        c.score_date,
        a.segment,
        a.vertical,
        a.employee_count,
        f.first_term_start,
        day_number(c.score_date) - day_number(f.first_term_start) as days_into_contract,
        c.renewal_date,
        day_number(c.renewal_date) - day_number(c.score_date) as days_to_renewal
    from covering c
    join first_terms f on f.account_id = c.account_id
    left join {{ source('snapshot', 'accounts') }} a on a.account_id = c.account_id
)

select * from final
