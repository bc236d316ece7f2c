-- R_a(m) of SPEC §8: recognised revenue per account × month with the account's segment and
-- acquisition channel. recurring_usd = seat + consumption as recognised in the month itself:
-- prior-period adjustments and restatements are kept out (the books carry them in the first
-- open month and in their period; the metrics sum them separately, per AGT-804), so a late
-- correction never distorts the month it is booked in. total_usd is every recognised dollar of
-- the month, adjustments included (Rule of 40's total recognised revenue).
{{ config(tags=['metrics'], order_by=['account_id', 'month']) }}

with recognised as (
    select
        account_id,
        month,
        sum(case
            when sku_type in ('seat', 'consumption')
                and not prior_period_adjustment
                and not restatement_flag
            then recognized_usd else 0 end) as recurring_usd,
        sum(case
            when prior_period_adjustment or restatement_flag
            then recognized_usd else 0 end) as adjustments_usd,
        sum(recognized_usd) as total_usd
    from {{ ref('revenue_recognition_log') }}
    group by account_id, month
),

final as (
    select
        r.account_id,
        a.segment,
        a.acquisition_channel,
        r.month,
        arrow_cast(r.recurring_usd, 'Decimal128(18, 2)') as recurring_usd,
        arrow_cast(r.adjustments_usd, 'Decimal128(18, 2)') as adjustments_usd,
        arrow_cast(r.total_usd, 'Decimal128(18, 2)') as total_usd
    -- every account-month, with its account's attributes: a right join, so the engine hashes
    -- the accounts rather than the account-months
    from {{ source('snapshot', 'accounts') }} a
    right join recognised r on a.account_id = r.account_id
)

select * from final
