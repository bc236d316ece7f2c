-- Go-to-market spend: one row per month × segment × channel × category (sales, marketing,
-- customer success). The S&M input of Magic Number and CAC payback.
{{ config(order_by=['month', 'segment', 'channel', 'category']) }}

with final as (
    select
        month,
        segment,
        channel,
        category,
        sum(amount_usd) as amount_usd
    from {{ source('snapshot', 'gtm_spend') }}
    group by month, segment, channel, category
)

select * from final
