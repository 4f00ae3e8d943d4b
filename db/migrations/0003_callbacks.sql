CREATE TABLE `deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`outbox_id` integer NOT NULL,
	`endpoint_id` text NOT NULL,
	`attempt` integer NOT NULL,
	`ok` integer NOT NULL,
	`response_code` integer,
	`latency_ms` integer NOT NULL,
	`error` text,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `deliveries_endpoint_id_at_idx` ON `deliveries` (`endpoint_id`,`at`);--> statement-breakpoint
CREATE INDEX `deliveries_outbox_id_idx` ON `deliveries` (`outbox_id`);--> statement-breakpoint
CREATE TABLE `endpoint_versions` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `endpoints` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`brands` text NOT NULL,
	`events` text NOT NULL,
	`url` text NOT NULL,
	`description` text,
	`secret_enc` text NOT NULL,
	`previous_secret_enc` text,
	`previous_secret_expires_at` integer,
	`status` text DEFAULT 'active' NOT NULL,
	`failing_since` integer,
	`disabled_at` integer,
	`disabled_reason` text,
	`partner_id` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`partner_id`) REFERENCES `partners`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `endpoints_partner_id_idx` ON `endpoints` (`partner_id`);--> statement-breakpoint
ALTER TABLE `partners` ADD `api_key_hash` text;--> statement-breakpoint
ALTER TABLE `outbox` ADD `next_attempt_at` integer;