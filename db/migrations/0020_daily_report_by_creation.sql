CREATE INDEX `iys_pulled_movements_creation_date_idx` ON `iys_pulled_movements` (`creation_date`);--> statement-breakpoint
CREATE INDEX `iys_report_items_creation_date_idx` ON `iys_report_items` (`creation_date`);--> statement-breakpoint
CREATE INDEX `outbox_iys_created_idx` ON `outbox` ("result" ->> '$.creationDate') WHERE kind = 'iys_report' AND status = 'done';