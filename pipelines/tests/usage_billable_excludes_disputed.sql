-- Disputed usage never reaches the recognition input (SPEC §6). Returns the offending rows.
select usage_id, account_id, audit_status
from {{ ref('usage_billable') }}
where audit_status = 'disputed'
