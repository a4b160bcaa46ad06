-- The waiting room of an activity (docs/WAITING_ROOM.md): on or off, and k, the orders
-- in flight the gateways forward per unit left. Operators change both live with
-- PUT /admin/v1/activities/{id}.
ALTER TABLE activities ADD COLUMN waiting_room BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE activities ADD COLUMN admission_factor DOUBLE NOT NULL DEFAULT 1.5;
