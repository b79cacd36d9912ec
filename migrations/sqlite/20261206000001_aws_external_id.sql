-- The external id a sub-tenant's IAM roles must require (`sts:ExternalId`) for Pushrail to
-- assume them: generated on first use, never typed, never changed.
ALTER TABLE sub_tenants ADD COLUMN aws_external_id TEXT;
