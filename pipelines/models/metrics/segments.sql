-- The market segments every per-segment metric and decision node reports on: accounts.segment's
-- accepted values (pipelines/sources/crm.yml), declared once. Models that also total over all
-- segments add 'ALL' themselves.
{{ config(materialized='view', tags=['metrics']) }}

select segment from (values ('SMB'), ('MM'), ('ENT')) s(segment)
