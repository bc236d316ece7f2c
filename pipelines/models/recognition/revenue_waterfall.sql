-- The revenue waterfall: one row per booked month (of the order) × recognition month.
-- Months ended by as_of carry what was recognised (status recognized); later months what the
-- schedule still holds for seat and committed consumption value (status scheduled). Each row
-- also carries its booked month's recognised-to-date and remaining totals.
{{ config(tags=['recognition'], order_by=['booked_month', 'recognition_month', 'status']) }}

with lines as (
    select order_line_id, arrow_cast(date_trunc('month', order_date), 'Date32') as booked_month
    from {{ ref('recognition_lines') }}
),

recognized as (
    select l.booked_month, r.month as recognition_month, sum(r.recognized_usd) as amount_usd, 'recognized' as status
    from {{ ref('revenue_recognition_log') }} r
    join lines l on l.order_line_id = r.order_line_id
    group by 1, 2
),

scheduled as (
    select l.booked_month, s.month as recognition_month, sum(s.scheduled_usd) as amount_usd, 'scheduled' as status
    from {{ ref('revenue_schedule') }} s
    join lines l on l.order_line_id = s.order_line_id
    where arrow_cast(s.month + interval '1 month', 'Date32') > {{ as_of_date }}
    group by 1, 2
),

cells as (
    select * from recognized
    union all
    select * from scheduled
),

final as (
    select
        booked_month,
        recognition_month,
        status,
        amount_usd,
        sum(case when status = 'recognized' then amount_usd else 0 end) over (partition by booked_month) as recognized_to_date_usd,
        sum(case when status = 'scheduled' then amount_usd else 0 end) over (partition by booked_month) as remaining_usd
    from cells
)

select * from final
