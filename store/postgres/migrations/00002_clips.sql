-- Clips: the listing everyone but the owner sees (public, ready) and the
-- clips whose processing must resume after a restart get partial indexes,
-- so neither scans the owner's other clips or the whole table.

-- +goose Up
CREATE INDEX clips_owner_public_idx ON clips (owner, id) WHERE visibility = 'public' AND status = 'ready';
CREATE INDEX clips_processing_idx ON clips (id) WHERE status = 'processing';

-- +goose Down
DROP INDEX clips_processing_idx;
DROP INDEX clips_owner_public_idx;
