-- No recognition input lies after the snapshot's as_of.
select usage_id, period_end
from {{ ref('usage_billable') }}
where period_end > {{ as_of }}
